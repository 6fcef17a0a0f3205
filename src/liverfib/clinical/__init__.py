"""Server floor (above ``pipeline``): the web app (``web``), the DICOM listener and sender (``pacs``),
the job store and worker (``jobs``), the worker's job function that forwards results to the PACS
(``processor``) and the CLI twins of the servers (``serve``).

The analyses the servers run live in ``liverfib.pipeline.clinical``; the DICOM SEG/SR/SC writers and
the HTML/PDF report in ``liverfib.report``. Modules are imported on use so that this package stays
light; pydicom, highdicom, pynetdicom and FastAPI load only where needed.
"""

__all__: list[str] = []
