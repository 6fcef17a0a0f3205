"""Clinical integration: DICOM results (SEG/SR/SC), de-identification, PACS listener, web app, reports.

Modules are imported on use (``from liverfib.clinical.dicom_out import write_seg``) so that this
package stays light; pydicom, highdicom, pynetdicom and FastAPI load only where needed.
"""

__all__: list[str] = []
