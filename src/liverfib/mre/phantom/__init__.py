"""Synthetic MR elastography exams written as scanner-style DICOM series, with ground truth.

One exam is 4-5 axial slices, 256 x 256 at 1.6 mm (FOV 410 mm), 10 mm thick, 15 mm apart. Each
slice is an abdominal cross-section: body outline with subcutaneous fat, muscle, ribs, spine,
aorta and IVC, a lobulated liver (right lobe + left lobe, varied per exam and per slice) crossed by
vessels and the fissure for the ligamentum teres, and the spleen. Per exam:

* a **true stiffness field** (kPa): the liver gets a stage-specific base value drawn from
  :data:`STAGE_KPA_RANGES` with smooth heterogeneity that grows with stage, other tissues fixed
  values (spleen stiffer with stage, vessels fluid-like);
* the **elastogram** a scanner would show: the true field blurred (inversion smoothing),
  multiplicative noise, and inversion artefacts where the confidence is low;
* a **confidence map** (0-100 %): low at tissue boundaries, around vessels, along the fissure, at
  depth from the driver and in random wave-null patches, 0 outside the body;
* **magnitude** (GRE-like: bright fat, dark flowing blood and bone) with a bias field and Rician noise;
* **wave images**: 4 phase offsets of a 60 Hz shear wave whose wavelength follows the local stiffness.

DICOM layouts (modelled on the two conventions liverfib reads, see :mod:`liverfib.mre.dicom`):

* ``siemens``: four series ``*_MAG``, ``*_WAVE``, ``*_ELASTOGRAM`` (Pa in the pixels, kPa through a
  Real World Value Mapping item) and ``*_CONFIDENCE`` (percent), all files in one flat folder.
* ``ge``: three series ``MRE Magnitude``, ``MRE Wave Images``, ``MRE Stiffness`` (kPa through
  RescaleSlope/Intercept with RescaleType ``KPA``); the 95 % confidence limit is an overlay plane
  (60xx) on the stiffness images (1 = below 95 %). One sub-folder per series.

Partial volume: every slice is the mean of three sub-slices 3.3 mm apart (the 10 mm slab), so
liver edges, vessels and the spleen tip are blurred through-plane as on a real thick slice; the
true labels are those of the slab centre.

Two shape/noise families (``variant``): ``standard`` (used to train the shipped segmenter) and
``independent`` (never used for training or model selection): a liver built from overlapping
super-ellipses with other harmonics, more and larger vessels, thicker/thinner body walls, 5 %
instead of 3 % inversion noise, stronger artefacts and a coil-shaped (not linear) bias field.

**Truth is computed here, with numpy/scipy only, never with** :mod:`liverfib.mre.quantify`
(see :func:`reader_roi`). ``truth.json`` holds ``mean_stiffness_kpa``: the pixel mean (= area-weighted
mean, all pixels have one size) of the *true, noise-free* stiffness field over the reader-style
ROI, ``stage`` (the cut-off table of :mod:`liverfib.mre.stages` applied to it), the true liver
mask (``truth/liver_mask.nii.gz``), the true stiffness field (``truth/true_stiffness_kpa.nii.gz``),
the ROI (``truth/reader_roi.nii.gz``), ``synthetic: true``, and ``manual_roi``: a simulated reader who
draws a smooth ROI per slice with personal margin, covering only the part of the liver around a
spot of their choosing, read from the elastogram (not the truth). The confidence map plays no part
in the truth: it is a property of the measurement, not of the liver.

Stiffness ranges per stage (kPa) follow the interpretation table of Venkatesh, Yin & Ehman,
JMRI 2013;37:544-555 (< 2.5 normal ... > 5 cirrhosis), kept a little inside the cut-offs of
:data:`liverfib.mre.stages.DEFAULT_CUTOFFS` so that the intended stage is usually the true stage.

Modules: :mod:`.anatomy` (label maps), :mod:`.signals` (stiffness, confidence, elastogram, magnitude,
waves), :mod:`.roi` (truth ROI and the simulated reader), :mod:`.exam` (:func:`simulate_exam`),
:mod:`.dicom_export` and :mod:`.export` (files and truth).
"""

from __future__ import annotations

from liverfib.mre.phantom.dicom_export import PHANTOM_MODEL_NAME
from liverfib.mre.phantom.exam import STAGE_KPA_RANGES, VARIANTS, VENDORS, PhantomSlices, simulate_exam
from liverfib.mre.phantom.export import FORMATS, SYNTHETIC_NOTE, write_exam, write_phantoms
from liverfib.mre.phantom.roi import READER_ROI_RULE, reader_roi

__all__ = [
    "VENDORS",
    "STAGE_KPA_RANGES",
    "PhantomSlices",
    "VARIANTS",
    "FORMATS",
    "PHANTOM_MODEL_NAME",
    "SYNTHETIC_NOTE",
    "READER_ROI_RULE",
    "reader_roi",
    "simulate_exam",
    "write_exam",
    "write_phantoms",
]
