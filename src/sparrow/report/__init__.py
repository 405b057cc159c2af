"""Reports: a self-contained HTML page (``html``) and the figures it embeds (``figures``).

from sparrow.report import Figure, Report, bar_chart, loss_curve, save_frame_strip
"""

from sparrow.report.figures import bar_chart, loss_curve, save_frame_strip
from sparrow.report.html import Figure, Report, Section

__all__ = ["Figure", "Report", "Section", "bar_chart", "loss_curve", "save_frame_strip"]
