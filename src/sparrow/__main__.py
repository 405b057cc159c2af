from sparrow.cli import main

main()
