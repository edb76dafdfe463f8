// A floor's plan: a tap or click on the plan fills the "place a marker" form's position (x, y as fractions of
// the plan's width and height) and shows where the marker will go. Without JavaScript the form's x/y
// fields are typed in.
(function () {
  "use strict";

  function setUp(frame) {
    var form = document.getElementById(frame.dataset.form);
    var image = frame.querySelector(".plan-image");
    var pending = frame.querySelector("[data-new-marker]");
    if (!form || !image || !pending) { return; }
    var x = form.elements.namedItem("x");
    var y = form.elements.namedItem("y");
    var kind = form.elements.namedItem("kind");

    function show(fx, fy) {
      var left = (fx * 100).toFixed(2) + "%";
      var top = (fy * 100).toFixed(2) + "%";
      pending.querySelector("circle").setAttribute("cx", left);
      pending.querySelector("circle").setAttribute("cy", top);
      pending.querySelector("text").setAttribute("x", left);
      pending.querySelector("text").setAttribute("y", top);
      pending.classList.add("shown");
    }

    frame.addEventListener("click", function (event) {
      var box = image.getBoundingClientRect();
      if (!box.width || !box.height) { return; }
      var fx = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
      var fy = Math.min(1, Math.max(0, (event.clientY - box.top) / box.height));
      x.value = fx.toFixed(4);
      y.value = fy.toFixed(4);
      show(fx, fy);
      if (kind) { kind.focus({preventScroll: true}); }
      form.scrollIntoView({behavior: "smooth", block: "nearest"});
    });

    function typed() {
      var fx = parseFloat(x.value), fy = parseFloat(y.value);
      if (fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1) { show(fx, fy); }
    }
    x.addEventListener("input", typed);
    y.addEventListener("input", typed);
    typed();
  }

  function start() {
    var frames = document.querySelectorAll("[data-place-marker]");
    for (var i = 0; i < frames.length; i++) { setUp(frames[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
