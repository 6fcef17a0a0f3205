"""Clinical commands: deidentify, serve-dicom, serve, report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from liverfib import api
from liverfib.cli._app import DeviceOpt, JsonFlag, StrictFlag, _call, app

DataFolder = Annotated[
    Path, typer.Option("--data", help="Folder for the job database, received files and results.")
]


@app.command()
def deidentify(
    src: Annotated[Path, typer.Argument(help="A DICOM file or a folder of DICOM files.")],
    out: Annotated[Path, typer.Argument(help="Output folder (files named by their new SOPInstanceUID).")],
    salt: Annotated[
        str | None,
        typer.Option("--salt", help="Secret for new UIDs/pseudonyms (default: $LIVERFIB_DEID_SALT)."),
    ] = None,
    keep_text: Annotated[
        bool, typer.Option("--keep-burned-in", help="Do not blank pixels outside the ultrasound fan.")
    ] = False,
    strict: StrictFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """De-identify DICOM (Basic Confidentiality Profile; burned-in text outside the US fan blanked)."""
    _call(as_json, api.deidentify, src, out, salt=salt, mask_burned_in=not keep_text, strict=strict)


@app.command("serve-dicom")
def serve_dicom(
    ae_title: Annotated[str, typer.Option("--ae-title", help="Our AE title.")] = "LIVERFIB",
    port: Annotated[int, typer.Option("--port", help="DICOM port to listen on.")] = 11112,
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (default loopback; 0.0.0.0 to accept other machines).")
    ] = "127.0.0.1",
    allow: Annotated[
        str, typer.Option("--allow", help="Comma-separated calling AE titles that may send ('*' = any).")
    ] = "",
    forward: Annotated[
        str | None, typer.Option("--forward", help="Send SEG/SR/SC results to HOST:PORT:AET by C-STORE.")
    ] = None,
    data: DataFolder = Path("liverfib-data"),
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    keep_identifiers: Annotated[
        bool,
        typer.Option(
            "--keep-identifiers",
            help="Keep a pseudonym map (original patient IDs/UIDs) so forwarded results carry them.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """DICOM storage SCP: US -> staging, MRE -> MRE, MR -> MRI; received data is de-identified."""
    _call(
        as_json,
        api.serve_dicom,
        data_dir=data,
        ae_title=ae_title,
        host=host,
        port=port,
        allow=[a.strip() for a in allow.split(",") if a.strip()],
        forward=forward,
        cam=cam,
        keep_identifiers=keep_identifiers,
    )


@app.command()
def serve(
    port: Annotated[int, typer.Option("--port", help="HTTP port.")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (use a TLS proxy beyond loopback).")] = "127.0.0.1",
    data: DataFolder = Path("liverfib-data"),
    max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest accepted upload.")] = 64.0,
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Web viewer (token from $LIVERFIB_TOKEN): upload, job list, overlays, reports, downloads."""
    _call(as_json, api.serve, data_dir=data, host=host, port=port, max_upload_mb=max_upload_mb, cam=cam)


@app.command()
def report(
    image: Annotated[Path, typer.Argument(help="One ultrasound image: DICOM, PNG or JPEG.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.html/pdf, seg/sr/sc.dcm, result.json.")],
    model: Annotated[str, typer.Option("--model", help="'default' or a staging checkpoint.")] = "default",
    cam: Annotated[bool, typer.Option("--cam/--no-cam", help="Grad-CAM overlay and pseudo-mask.")] = True,
    deidentified: Annotated[
        bool, typer.Option("--deidentified", help="Leave patient name, ID and date out of the report.")
    ] = False,
    device: DeviceOpt = "cpu",
    as_json: JsonFlag = False,
) -> None:
    """Stage one image and write an HTML/PDF report plus DICOM SEG, SR and SC."""
    _call(as_json, api.report, image, out=out, model=model, cam=cam, deidentified=deidentified, device=device)
