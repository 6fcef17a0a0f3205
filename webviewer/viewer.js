// liverfib volume viewer: NiiVue, bundled by build.mjs into
// src/liverfib/clinical/static/niivue-viewer.js (served by the web app; no CDN).
//
// A page declares a viewer without inline script (the CSP forbids it):
//   <canvas class="nv-canvas" data-layers='[{"url": "/jobs/ID/files/volume.nii.gz",
//     "name": "volume.nii.gz", "colormap": "gray"}, {"url": ..., "colormap": "red", "opacity": 0.4}]'>
// Each layer takes NiiVue's loadVolumes fields (url, name, colormap, opacity, cal_min, cal_max,
// colorbarVisible). Optional: data-slice-type="axial" (default: multiplanar); a range input with
// data-opacity-for="<canvas id>" scales the overlays' opacity; a checkbox with
// data-layer-for="<canvas id>" data-layer="<i>" shows or hides layer i. The canvas gets
// data-state="loading" | "ready" | "error" and, on error, data-error with the message, so that
// pages and tests can tell what happened.
import { Niivue, SLICE_TYPE } from "@niivue/niivue";

const FIELDS = ["url", "name", "colormap", "opacity", "cal_min", "cal_max", "colorbarVisible"];

function cleanLayer(layer) {
  const out = {};
  for (const key of FIELDS) if (layer[key] !== undefined) out[key] = layer[key];
  if (out.colorbarVisible === undefined) out.colorbarVisible = false;
  return out;
}

/** Show ``layers`` (background first) on ``canvas``; resolves to the Niivue instance.
 * ``options.sliceType``: "axial" or multiplanar (default); ``options.niivue``: Niivue settings. */
export async function showVolumes(canvas, layers, options = {}) {
  if (!Array.isArray(layers) || layers.length === 0) throw new Error("no volume layers given");
  const colorbar = layers.some((l) => l.colorbarVisible);
  const nv = new Niivue({
    backColor: [0, 0, 0, 1],
    crosshairColor: [0.2, 0.85, 1, 0.9], // cyan: red is the liver mask
    crosshairWidth: 1,
    isColorbar: colorbar,
    dragAndDropEnabled: false,
    loadingText: "loading volume…",
    logLevel: "warn",
    ...options.niivue,
  });
  await nv.attachToCanvas(canvas);
  await nv.loadVolumes(layers.map(cleanLayer));
  nv.setSliceType(options.sliceType === "axial" ? SLICE_TYPE.AXIAL : SLICE_TYPE.MULTIPLANAR);
  nv.setInterpolation(true); // nearest neighbour: a mask's edge stays a voxel edge
  return nv;
}

// Overlay opacity = layer opacity x slider; a hidden layer has opacity 0.
function bindControls(id, nv, layers) {
  const slider = document.querySelector(`input[data-opacity-for="${id}"]`);
  const toggles = [...document.querySelectorAll(`input[data-layer-for="${id}"]`)];
  const apply = () => {
    const scale = slider ? Number(slider.value) / 100 : 1;
    for (let i = 1; i < nv.volumes.length; i++) {
      const box = toggles.find((t) => Number(t.dataset.layer) === i);
      const shown = !box || box.checked;
      nv.setOpacity(i, shown ? (layers[i].opacity ?? 1) * scale : 0);
    }
  };
  if (slider) slider.addEventListener("input", apply);
  toggles.forEach((t) => t.addEventListener("change", apply));
  apply();
}

async function initCanvas(canvas) {
  canvas.dataset.state = "loading";
  try {
    const layers = JSON.parse(canvas.dataset.layers || "[]");
    const nv = await showVolumes(canvas, layers, { sliceType: canvas.dataset.sliceType });
    if (canvas.id) bindControls(canvas.id, nv, layers);
    canvas.dataset.volumes = String(nv.volumes.length);
    canvas.dataset.state = "ready";
  } catch (err) {
    canvas.dataset.state = "error";
    canvas.dataset.error = String((err && err.message) || err);
    const note = document.createElement("p");
    note.className = "nv-error";
    note.textContent = `The volume viewer could not start: ${canvas.dataset.error}`;
    canvas.insertAdjacentElement("afterend", note);
  }
}

function initAll() {
  document.querySelectorAll("canvas.nv-canvas[data-layers]").forEach((c) => initCanvas(c));
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", initAll);
  else initAll();
}

export const version = __NIIVUE_VERSION__;
