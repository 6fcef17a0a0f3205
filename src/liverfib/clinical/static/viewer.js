// liverfib web viewer (served as a file: the CSP allows no inline script).
// The overlay opacity follows the slider.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var slider = document.getElementById("opacity");
  var overlay = document.getElementById("overlay");
  if (!slider || !overlay) return;
  var apply = function () { overlay.style.opacity = String(slider.value / 100); };
  slider.addEventListener("input", apply);
  apply();
});
