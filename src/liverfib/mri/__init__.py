"""MRI (and CT) liver: segmentation, multi-phase and per-slice fibrosis staging, dataset layouts
(LiQA, CirrMRI600+), synthetic subjects. Import the submodules; nothing heavy is loaded here."""
