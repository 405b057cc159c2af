"""Chat backends: one interface (``base``: a :class:`Request` of messages, text with optional images or
a video segment, and :class:`Decoding` settings in; a :class:`Response` out) over an OpenAI-compatible
server (``openai``), a local Hugging Face LM (``hf``), a Sparrow checkpoint that sees (``sparrow``), and
the content-addressed response cache (``cache``). Used by ``sparrow.refine``, ``sparrow.flywheel`` and
``sparrow.serve``."""
