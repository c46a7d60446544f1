/* Convolution explorer: a live, editable 2-D convolution for the course website (the page;
 * the numbers are in conv-explorer-core.js, which must be loaded first).
 *
 * Every element <div class="conv-explorer" data-preset="summary"> on a page becomes an
 * explorer (pages without one are left alone). Presets: "summary" (the one-page summary's
 * 5x5 example), "sobel", "box", "random", "layer" (3 input channels, 2 filters and a bias,
 * the way cs231n's demo shows a conv layer).
 *
 * The numbers follow conv_lib (see conv-explorer-core.js; tests/test_explorer.py compares
 * them with conv_lib run in Python). Error messages use conv_lib's wording.
 *
 * JavaScript API, on the container element (`el.convExplorer`):
 *   getState()          -> {input: [C_in][H][W], weights: [C_out][C_in][kH][kW],
 *                           bias: [C_out] or null, stride, padding, dilation, mode, step}
 *   setState(partial)   -> merge `partial` into the state and redraw; `kernel` ([kH][kW])
 *                          and a 2-D `input` are accepted for one channel and one filter.
 *                          padding: an integer >= 0, "valid", "same" or "full";
 *                          mode: "convolution" (kernel flipped) or "correlation".
 *                          Throws an Error naming the parameter if a value is malformed.
 *   getOutput()         -> [C_out][H_out][W_out] numbers, or null for impossible settings
 *   getError()          -> the message shown for impossible settings or bad input, or null
 *   getInfo()           -> {pads: [[top, bottom], [left, right]], outputSize: [H_out, W_out],
 *                           params, steps} (null fields when the settings are impossible)
 *   loadPreset(name)    -> load one of the presets above
 *   goTo(step)          -> show step `step` (0-based; one step per output cell)
 */
(function () {
  "use strict";

  var core = window.ConvExplorerCore;
  var LIMITS = core.LIMITS, PADDINGS = core.PADDINGS, PRESETS = core.PRESETS, ExplorerError = core.ExplorerError;
  var parseNumber = core.parseNumber, fmt = core.fmt, fmtWeight = core.fmtWeight, cellText = core.cellText;
  var resize = core.resize, clone = core.clone, overlay = core.overlay, axisPads = core.axisPads;
  var windowAt = core.windowAt, compute = core.compute, paramCount = core.paramCount;
  var preset = core.preset, normalise = core.normalise;
  var counter = 0;

  /** Smaller digits for longer numbers, so they fit their cell. */
  function fitText(cell, text) {
    cell.textContent = text;
    cell.classList.toggle("ce-len4", text.length === 4);
    cell.classList.toggle("ce-len5", text.length >= 5);
  }

  // --- the DOM ------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) { if (child) node.appendChild(child); });
    return node;
  }

  function Explorer(root) {
    this.root = root;
    this.id = "ce" + (++counter);
    this.seed = 20260101;
    var name = root.getAttribute("data-preset") || "summary";
    this.state = normalise(preset(PRESETS[name] ? name : "summary", preset("summary"), this.seed));
    this.playing = null;
    this.result = null;
    this.error = null;
    this.structure = "";
    this.build();
    this.render();
  }

  var P = Explorer.prototype;

  P.numberField = function (key, label) {
    var id = this.id + "-" + key;
    var input = el("input", { type: "number", id: id, min: LIMITS[key][0], max: LIMITS[key][1], step: 1,
      inputmode: "numeric", "data-key": key });
    this.controls[key] = input;
    return el("div", { className: "ce-field" }, [el("label", { for: id, text: label }), input]);
  };

  P.build = function () {
    var self = this, id = this.id;
    this.controls = {};
    var presetSelect = el("select", { id: id + "-preset" });
    Object.keys(PRESETS).forEach(function (k) { presetSelect.appendChild(el("option", { value: k, text: PRESETS[k] })); });
    presetSelect.value = this.root.getAttribute("data-preset") || "summary";
    this.controls.preset = presetSelect;
    var load = el("button", { type: "button", className: "ce-button", text: "Load", "aria-label": "Load preset" });
    var padding = el("select", { id: id + "-padding", "data-key": "padding" });
    PADDINGS.forEach(function (p) { padding.appendChild(el("option", { value: p, text: p })); });
    this.controls.padding = padding;
    var bias = el("input", { type: "checkbox", id: id + "-bias", "data-key": "bias" });
    this.controls.bias = bias;
    var modes = el("fieldset", { className: "ce-modes" }, [el("legend", { text: "Operation" })]);
    this.controls.mode = {};
    [["convolution", "Convolution (kernel flipped)"], ["correlation", "Cross-correlation"]].forEach(function (m) {
      var radio = el("input", { type: "radio", name: id + "-mode", id: id + "-" + m[0], value: m[0], "data-key": "mode" });
      self.controls.mode[m[0]] = radio;
      modes.appendChild(el("div", { className: "ce-field ce-radio" }, [radio, el("label", { for: id + "-" + m[0], text: m[1] })]));
    });

    var form = el("form", { className: "ce-controls" }, [
      el("div", { className: "ce-row" }, [
        el("div", { className: "ce-field ce-preset" }, [el("label", { for: id + "-preset", text: "Preset" }), presetSelect]),
        load,
      ]),
      el("fieldset", {}, [el("legend", { text: "Sizes" }),
        this.numberField("rows", "Input rows"), this.numberField("cols", "Input columns"),
        this.numberField("krows", "Kernel rows"), this.numberField("kcols", "Kernel columns")]),
      el("fieldset", {}, [el("legend", { text: "Window" }),
        this.numberField("stride", "Stride"),
        el("div", { className: "ce-field" }, [el("label", { for: id + "-padding", text: "Padding" }), padding]),
        this.numberField("dilation", "Dilation")]),
      modes,
      el("fieldset", {}, [el("legend", { text: "Layer" }),
        this.numberField("cin", "Input channels C_in"), this.numberField("cout", "Filters C_out"),
        el("div", { className: "ce-field ce-radio" }, [bias, el("label", { for: id + "-bias", text: "Bias" })])]),
    ]);
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.addEventListener("change", function (e) { self.onControl(e); });
    form.addEventListener("input", function (e) { if (e.target.type === "number") self.onControl(e); });
    load.addEventListener("click", function () { self.loadPreset(presetSelect.value); });
    presetSelect.addEventListener("change", function () { self.loadPreset(presetSelect.value); });

    this.formula = el("div", { className: "ce-formula" });
    this.message = el("div", { className: "ce-message", hidden: "" });
    this.stage = el("div", { className: "ce-stage" });
    this.stepPanel = el("div", { className: "ce-step" });
    this.live = el("div", { className: "ce-live", "aria-live": "polite", "aria-atomic": "true" });

    var btn = function (label, symbol, fn) {
      var b = el("button", { type: "button", className: "ce-button", "aria-label": label, title: label }, [
        el("span", { "aria-hidden": "true", text: symbol })]);
      b.addEventListener("click", fn);
      return b;
    };
    this.playButton = el("button", { type: "button", className: "ce-button ce-play", text: "Play" });
    this.playButton.addEventListener("click", function () { self.togglePlay(); });
    this.slider = el("input", { type: "range", min: 0, max: 0, step: 1, value: 0, id: id + "-step",
      className: "ce-slider" });
    this.slider.addEventListener("input", function () { self.goTo(Number(self.slider.value)); });
    this.stepLabel = el("span", { className: "ce-step-label", id: id + "-step-label" });
    this.player = el("div", { className: "ce-player", role: "group", "aria-label": "Step through the windows" }, [
      btn("First step", "|\u25c0", function () { self.stop(); self.goTo(0); }),
      btn("Previous step", "\u25c0", function () { self.stop(); self.goTo(self.state.step - 1); }),
      this.playButton,
      btn("Next step", "\u25b6", function () { self.stop(); self.goTo(self.state.step + 1); }),
      btn("Last step", "\u25b6|", function () { self.stop(); self.goTo(Infinity); }),
      el("label", { for: id + "-step", className: "ce-slider-label", text: "Step" }),
      this.slider, this.stepLabel,
    ]);
    this.resultArea = el("div", { className: "ce-result" }, [this.player, this.stepPanel]);

    this.root.textContent = "";
    this.root.classList.add("ce-ready");
    [form, this.formula, this.message, this.stage, this.resultArea, this.live].forEach(function (n) {
      self.root.appendChild(n);
    });
    this.stage.addEventListener("input", function (e) { self.onCell(e); });
    this.stage.addEventListener("keydown", function (e) { self.onCellKey(e); });
    this.stage.addEventListener("click", function (e) {
      var cell = e.target.closest("[data-step]");
      if (cell) { self.stop(); self.goTo(Number(cell.getAttribute("data-step"))); }
    });
    if (window.ResizeObserver) {
      var width = 0;
      new ResizeObserver(function () {
        if (Math.abs(self.root.clientWidth - width) > 4) { width = self.root.clientWidth; self.sizeCells(); }
      }).observe(this.root);
    }
  };

  /** Settings from the form: sizes resize the grids, the rest is copied. */
  P.onControl = function (e) {
    var key = e.target.getAttribute("data-key");
    if (!key) return;
    var st = this.state, c = this.controls;
    if (key === "mode") { st.mode = e.target.value; this.render(); return; }
    if (key === "padding") { st.padding = /^\d+$/.test(c.padding.value) ? Number(c.padding.value) : c.padding.value; this.render(); return; }
    if (key === "bias") {
      st.bias = c.bias.checked ? st.weights.map(function () { return 0; }) : null;
      this.render();
      return;
    }
    var text = e.target.value.trim(), v = Number(text), lim = LIMITS[key];
    if (!/^\d+$/.test(text) || v < lim[0] || v > lim[1]) {
      var label = this.root.querySelector("label[for='" + e.target.id + "']").textContent;
      this.fieldError = { input: e.target, message: label + ": got " + (text ? text : "nothing") +
        "; expected an integer from " + lim[0] + " to " + lim[1] };
      e.target.setAttribute("aria-invalid", "true");
      this.render();
      return;
    }
    e.target.removeAttribute("aria-invalid");
    if (this.fieldError && this.fieldError.input === e.target) this.fieldError = null;
    // Values outside a smaller size are remembered: typing 12 over 5 passes through 1.
    var mem = this.memory || (this.memory = { input: [], weights: [] });
    st.input.forEach(function (g, c) { mem.input[c] = overlay(mem.input[c], g); });
    st.weights.forEach(function (f, o) {
      mem.weights[o] = mem.weights[o] || [];
      f.forEach(function (g, c) { mem.weights[o][c] = overlay(mem.weights[o][c], g); });
    });
    var recall = function (g, rows, cols) { return resize(g || [], rows, cols); };
    var h = st.input[0].length, w = st.input[0][0].length, kh = st.weights[0][0].length, kw = st.weights[0][0][0].length;
    if (key === "stride" || key === "dilation") st[key] = v;
    if (key === "rows" || key === "cols") {
      h = key === "rows" ? v : h; w = key === "cols" ? v : w;
      st.input = st.input.map(function (g, c) { return recall(mem.input[c], h, w); });
    }
    if (key === "krows" || key === "kcols") {
      kh = key === "krows" ? v : kh; kw = key === "kcols" ? v : kw;
      st.weights = st.weights.map(function (f, o) {
        return f.map(function (g, c) { return recall(mem.weights[o][c], kh, kw); });
      });
    }
    if (key === "cin") {
      while (st.input.length < v) st.input.push(recall(mem.input[st.input.length], h, w));
      st.input.length = v;
      st.weights.forEach(function (f, o) {
        while (f.length < v) f.push(recall(mem.weights[o][f.length], kh, kw));
        f.length = v;
      });
    }
    if (key === "cout") {
      while (st.weights.length < v) {
        var o = st.weights.length, slices = [];
        for (var ch = 0; ch < st.input.length; ch++) slices.push(recall((mem.weights[o] || [])[ch], kh, kw));
        st.weights.push(slices);
      }
      st.weights.length = v;
      if (st.bias) { while (st.bias.length < v) st.bias.push(0); st.bias.length = v; }
    }
    this.render();
  };

  /** An edited cell of the input, a kernel or a bias. */
  P.onCell = function (e) {
    var t = e.target, where = t.getAttribute("data-cell");
    if (!where) return;
    var v = parseNumber(t.value), idx = where.split(",").map(Number), kind = idx.shift();
    this.cellErrors = this.cellErrors || {};
    var key = t.id;
    if (isNaN(v)) {
      t.setAttribute("aria-invalid", "true");
      this.cellErrors[key] = t.getAttribute("aria-label") + ": got " + JSON.stringify(t.value) +
        "; expected a number (like 3, -1.5 or 1/9)";
    } else {
      t.removeAttribute("aria-invalid");
      delete this.cellErrors[key];
      if (kind === 0) this.state.input[idx[0]][idx[1]][idx[2]] = v;
      else if (kind === 1) this.state.weights[idx[0]][idx[1]][idx[2]][idx[3]] = v;
      else this.state.bias[idx[0]] = v;
    }
    this.render();
  };

  /** Arrow keys move between the cells of a grid (left/right at the ends of the text). */
  P.onCellKey = function (e) {
    var t = e.target;
    if (!t.hasAttribute("data-row")) return;
    var dr = { ArrowUp: -1, ArrowDown: 1 }[e.key] || 0, dc = 0;
    if (e.key === "ArrowLeft" && t.selectionStart === 0 && t.selectionEnd === 0) dc = -1;
    if (e.key === "ArrowRight" && t.selectionStart === t.value.length) dc = 1;
    if (!dr && !dc) return;
    var grid = t.closest(".ce-grid");
    var next = grid.querySelector("input[data-row='" + (Number(t.getAttribute("data-row")) + dr) +
      "'][data-col='" + (Number(t.getAttribute("data-col")) + dc) + "']");
    if (next) { e.preventDefault(); next.focus(); next.select(); }
  };

  P.loadPreset = function (name) {
    this.stop();
    this.seed += 1;
    this.state = normalise(preset(name, this.state, this.seed));
    this.controls.preset.value = name;
    this.cellErrors = {};
    this.fieldError = null;
    this.memory = null;
    this.structure = "";
    this.render();
  };

  // --- drawing ---------------------------------------------------------------------------

  /** A grid of cells; `make(i, j)` returns the cell's element. */
  function grid(rows, cols, label, make) {
    var g = el("div", { className: "ce-grid", role: "group", "aria-label": label,
      style: "--rows:" + rows + ";--cols:" + cols });
    for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) g.appendChild(make(i, j));
    return g;
  }

  function editor(id, label, value, dataCell, i, j) {
    return el("input", { type: "text", className: "ce-cell ce-edit", id: id, "aria-label": label,
      value: cellText(value), inputmode: "decimal", autocomplete: "off", spellcheck: "false",
      "data-cell": dataCell, "data-row": i, "data-col": j });
  }

  P.panel = function (title, children) {
    return el("div", { className: "ce-panel" }, [el("p", { className: "ce-panel-title", text: title })].concat(children));
  };

  /** Rebuild the grids (only when their shapes change, so typing keeps its focus). */
  P.buildStage = function (geo) {
    var self = this, st = this.state, id = this.id;
    var cin = st.input.length, cout = st.weights.length, h = st.input[0].length, w = st.input[0][0].length;
    var kh = st.weights[0][0].length, kw = st.weights[0][0][0].length;
    var flipped = st.mode === "convolution", same = st.padding === "same" && st.stride !== 1;
    var pads = geo ? geo.pads : same ? [[0, 0], [0, 0]]
      : [axisPads(st.padding, kh, st.dilation, flipped), axisPads(st.padding, kw, st.dilation, flipped)];
    var hp = h + pads[0][0] + pads[0][1], wp = w + pads[1][0] + pads[1][1];
    this.stage.textContent = "";
    this.inputGrids = [];
    var inputs = [];
    for (var c = 0; c < cin; c++) {
      var g = grid(hp, wp, "Padded input" + (cin > 1 ? ", channel " + c : ""), function (r, q) {
        var i = r - pads[0][0], j = q - pads[1][0];
        if (i < 0 || j < 0 || i >= h || j >= w) return el("div", { className: "ce-cell ce-pad", text: "0" });
        var label = "Input " + (cin > 1 ? "channel " + c + ", " : "") + "row " + i + ", column " + j;
        return editor(id + "-x-" + c + "-" + i + "-" + j, label, st.input[c][i][j], "0," + c + "," + i + "," + j, i, j);
      });
      g.setAttribute("data-together", cin);
      this.inputGrids.push(g);
      inputs.push(el("div", { className: "ce-map" }, [cin > 1 ? el("p", { className: "ce-map-title", text: "channel " + c }) : null, g]));
    }
    var title = "Input " + h + "\u00d7" + w + (pads[0][0] + pads[0][1] + pads[1][0] + pads[1][1] ?
      ", zero padding shaded" : "") + (cin > 1 ? ", " + cin + " channels" : "");
    var filters = [];
    for (var o = 0; o < cout; o++) {
      var slices = [];
      for (var c2 = 0; c2 < cin; c2++) {
        slices.push(grid(kh, kw, "Kernel" + (cout > 1 || cin > 1 ? " W[" + o + ", " + c2 + "]" : ""), (function (o, c2) {
          return function (i, j) {
            var label = (cout > 1 || cin > 1 ? "Filter " + o + ", channel " + c2 + ", kernel" : "Kernel") + " row " + i + ", column " + j;
            return editor(id + "-w-" + o + "-" + c2 + "-" + i + "-" + j, label, st.weights[o][c2][i][j],
              "1," + o + "," + c2 + "," + i + "," + j, i, j);
          };
        })(o, c2)));
      }
      var bias = null;
      if (st.bias) {
        var bid = id + "-b-" + o;
        bias = el("div", { className: "ce-field ce-bias" }, [el("label", { for: bid, text: "bias b[" + o + "]" }),
          el("input", { type: "text", className: "ce-cell ce-edit", id: bid, value: cellText(st.bias[o]),
            inputmode: "decimal", autocomplete: "off", "aria-label": "Bias of filter " + o, "data-cell": "2," + o })]);
      }
      if (cin > 1) {
        slices = slices.map(function (g, c3) {
          return el("div", { className: "ce-map" }, [el("p", { className: "ce-map-title", text: "W[" + o + ", " + c3 + "]" }), g]);
        });
      }
      filters.push(el("div", { className: "ce-map ce-filter", "data-filter": o }, [
        cout > 1 || cin > 1 ? el("p", { className: "ce-map-title", text: "filter " + o }) : null,
        el("div", { className: "ce-slices" }, slices), bias]));
    }
    this.outputGrids = [];
    var outputs = [];
    if (geo) {
      for (var o2 = 0; o2 < cout; o2++) {
        var og = grid(geo.out[0], geo.out[1], "Output" + (cout > 1 ? " map " + o2 : ""), (function (o2) {
          return function (y, x) {
            return el("div", { className: "ce-cell ce-out", "data-step": (o2 * geo.out[0] + y) * geo.out[1] + x });
          };
        })(o2));
        og.setAttribute("data-together", cout);
        this.outputGrids.push(og);
        outputs.push(el("div", { className: "ce-map" }, [cout > 1 ? el("p", { className: "ce-map-title", text: "map " + o2 }) : null, og]));
      }
      outputs = [el("div", { className: "ce-maps" }, outputs)];
    }
    this.stage.appendChild(this.panel(title, [el("div", { className: "ce-maps" }, inputs)]));
    this.stage.appendChild(this.panel(cout > 1 || cin > 1 ? cout + " filter" + (cout > 1 ? "s" : "") + " of " + cin + "\u00d7" + kh + "\u00d7" + kw
      : "Kernel " + kh + "\u00d7" + kw + (st.mode === "convolution" ? " (flipped when applied)" : ""), filters));
    if (geo) {
      var outPanel = this.panel("Output " + (cout > 1 ? cout + "\u00d7" : "") + geo.out[0] + "\u00d7" + geo.out[1] +
        " (click a cell to see it)", outputs);
      outPanel.classList.add("ce-panel-output");
      outPanel.setAttribute("role", "group");
      outPanel.setAttribute("aria-label", "Output");
      outPanel.setAttribute("tabindex", "0");
      this.stage.appendChild(outPanel);
    }
    this.sizeCells();
  };

  /** Cell size: 40px at most, smaller when a grid would not fit the widget's width; the
   * channels of a volume side by side when their cells can stay 24px or larger. */
  P.sizeCells = function () {
    var avail = Math.max(this.root.clientWidth - 28, 120);
    this.stage.querySelectorAll(".ce-grid").forEach(function (g) {
      var cols = Number(g.style.getPropertyValue("--cols")), n = Number(g.getAttribute("data-together") || 1);
      var together = Math.floor((avail - 20 * (n - 1) - 6) / (n * cols)) - 2;
      var size = together >= 24 ? together : Math.floor((avail - 6) / cols) - 2;
      g.style.setProperty("--cell", Math.max(16, Math.min(40, size)) + "px");
    });
  };

  P.syncControls = function () {
    var st = this.state, c = this.controls;
    var values = { rows: st.input[0].length, cols: st.input[0][0].length, krows: st.weights[0][0].length,
      kcols: st.weights[0][0][0].length, stride: st.stride, dilation: st.dilation, cin: st.input.length,
      cout: st.weights.length };
    Object.keys(values).forEach(function (k) {
      if (c[k] !== document.activeElement && !c[k].hasAttribute("aria-invalid")) c[k].value = values[k];
    });
    c.padding.value = String(st.padding);
    c.bias.checked = !!st.bias;
    c.mode[st.mode].checked = true;
  };

  P.render = function () {
    var st = this.state;
    this.syncControls();
    var problem = null, geo = null;
    try {
      this.result = compute(st);
      geo = this.result.geo;
    } catch (err) {
      if (!(err instanceof ExplorerError)) throw err;
      this.result = null;
      problem = err.message;
    }
    var cellProblems = Object.keys(this.cellErrors || {}).map(function (k) { return this.cellErrors[k]; }, this);
    var inputProblem = this.fieldError ? this.fieldError.message : cellProblems[0] || null;
    var key = JSON.stringify([st.input.length, st.input[0].length, st.input[0][0].length, st.weights.length,
      st.weights[0][0].length, st.weights[0][0][0].length, !!st.bias, geo ? geo.pads : null, geo ? geo.out : null,
      st.mode, st.padding, st.dilation, st.stride === 1]);
    if (key !== this.structure) { this.structure = key; this.buildStage(geo); }
    this.error = inputProblem || problem;
    this.renderFormula(geo);
    if (this.error) {
      this.message.hidden = false;
      this.message.textContent = "";
      this.message.appendChild(el("p", { className: "ce-message-title",
        text: inputProblem ? "Check this value:" : "Impossible settings \u2014 no window fits, so there is no output:" }));
      this.message.appendChild(el("p", { className: "ce-message-text", text: this.error }));
      this.resultArea.hidden = true;
      this.stop();
      this.announce(this.error);
      this.root.classList.add("ce-has-error");
      return;
    }
    this.root.classList.remove("ce-has-error");
    this.message.hidden = true;
    this.resultArea.hidden = false;
    var steps = st.weights.length * geo.out[0] * geo.out[1];
    st.step = Math.max(0, Math.min(st.step, steps - 1));
    this.slider.max = steps - 1;
    this.showStep();
  };

  P.renderFormula = function (geo) {
    var st = this.state, f = this.formula;
    f.textContent = "";
    var names = [["Height", "H", "kH", "top", "bottom"], ["Width", "W", "kW", "left", "right"]];
    var sizes = [st.input[0].length, st.input[0][0].length], ks = [st.weights[0][0].length, st.weights[0][0][0].length];
    var s = st.stride, d = st.dilation;
    var list = el("ul", { className: "ce-sizes" });
    if (typeof st.padding === "string" && !(st.padding === "same" && s !== 1)) {
      var why = { valid: "no padding, p = 0", full: "p = d(k \u2212 1) on each side: every overlap",
        same: "d(k \u2212 1) zeros split so the output keeps the input's size" +
          (st.mode === "convolution" ? "; an odd one goes before the image (scipy's convolve2d)"
            : "; an odd one goes after the image (torch, scipy's correlate2d)") }[st.padding];
      f.appendChild(el("p", { className: "ce-padding-note", text: "Padding '" + st.padding + "': " + why + "." }));
    }
    for (var a = 0; a < 2; a++) {
      var n = sizes[a], k = ks[a], nm = names[a];
      var pads = axisPads(st.padding, k, d, st.mode === "convolution");
      var e = d * (k - 1) + 1, padded = n + pads[0] + pads[1];
      var li = el("li");
      if (st.padding === "same" && s !== 1) {
        li.textContent = nm[0] + ": 'same' padding needs stride 1.";
      } else if (e > padded) {
        li.textContent = nm[0] + ": the kernel spans d(k \u2212 1) + 1 = " + d + "\u00b7(" + k + " \u2212 1) + 1 = " + e +
          " pixels, the padded input has " + padded + ": no window fits.";
      } else {
        var pText = pads[0] === pads[1] ? "2\u00b7" + pads[0] : pads[0] + " + " + pads[1];
        var pSym = pads[0] === pads[1] ? "2p" : "p_" + nm[3] + " + p_" + nm[4];
        var out = Math.floor((padded - e) / s) + 1;
        li.appendChild(el("span", { className: "ce-formula-name", text: nm[0] + ": " }));
        li.appendChild(document.createTextNode(nm[1] + "_out = \u230a(" + nm[1] + " + " + pSym + " \u2212 d(" + nm[2] +
          " \u2212 1) \u2212 1) / s\u230b + 1 = \u230a(" + n + " + " + pText + " \u2212 " + d + "\u00b7(" + k + " \u2212 1) \u2212 1) / " +
          s + "\u230b + 1 = "));
        li.appendChild(el("strong", { className: "ce-out-size", "data-axis": a, text: String(out) }));
      }
      list.appendChild(li);
    }
    f.appendChild(list);
    var cout = st.weights.length, cin = st.input.length;
    var pc = paramCount(st);
    var params = "Parameters: C_out\u00b7(C_in\u00b7kH\u00b7kW)" + (st.bias ? " + C_out" : "") + " = " + cout + "\u00b7(" + cin +
      "\u00b7" + ks[0] + "\u00b7" + ks[1] + ")" + (st.bias ? " + " + cout : "") + " = ";
    f.appendChild(el("p", { className: "ce-params" }, [document.createTextNode(params),
      el("strong", { className: "ce-param-count", text: String(pc) }),
      document.createTextNode(geo ? " \u2014 the same for any image size; output " + cout + "\u00d7" + geo.out[0] + "\u00d7" +
        geo.out[1] + " (C_out\u00d7H_out\u00d7W_out)." : ".")]));
  };

  /** Steps 1-5 for the current step: highlight the window, list products and sum, fill the output. */
  P.showStep = function () {
    var st = this.state, geo = this.result.geo, out = this.result.output;
    var per = geo.out[0] * geo.out[1], o = Math.floor(st.step / per), y = Math.floor((st.step % per) / geo.out[1]);
    var x = st.step % geo.out[1], steps = st.weights.length * per;
    var win = windowAt(st, geo, o, y, x);
    this.slider.value = st.step;
    var where = "output (" + y + ", " + x + ")" + (st.weights.length > 1 ? " of map " + o : "");
    var stepText = "Step " + (st.step + 1) + " of " + steps;
    this.stepLabel.textContent = stepText;
    this.slider.setAttribute("aria-valuetext", stepText + ": " + where);
    // The window on the padded input (its taps, and the span they cover).
    var top = win.top, left = win.left, d = st.dilation, kh = geo.kernel[0], kw = geo.kernel[1];
    this.inputGrids.forEach(function (g) {
      var wp = geo.padded[1];
      g.querySelectorAll(".ce-cell").forEach(function (cell, n) {
        var r = Math.floor(n / wp), q = n % wp, ri = r - top, qi = q - left;
        var inSpan = ri >= 0 && qi >= 0 && ri < geo.extents[0] && qi < geo.extents[1];
        var tap = inSpan && ri % d === 0 && qi % d === 0 && ri / d < kh && qi / d < kw;
        cell.classList.toggle("ce-span", inSpan);
        cell.classList.toggle("ce-tap", tap);
      });
      // The window's outline: an absolutely placed box over the grid area it covers.
      var box = g.querySelector(".ce-window") || g.appendChild(el("div", { className: "ce-window", "aria-hidden": "true" }));
      box.style.gridRow = (top + 1) + " / span " + geo.extents[0];
      box.style.gridColumn = (left + 1) + " / span " + geo.extents[1];
    });
    this.stage.querySelectorAll(".ce-filter").forEach(function (f) {
      f.classList.toggle("ce-active", Number(f.getAttribute("data-filter")) === o);
    });
    this.outputGrids.forEach(function (g, m) {
      Array.prototype.forEach.call(g.children, function (cell, n) {
        var v = out[m][Math.floor(n / geo.out[1])][n % geo.out[1]], index = m * per + n;
        fitText(cell, fmt(v));
        cell.setAttribute("data-value", String(v));
        cell.classList.toggle("ce-current", index === st.step);
        cell.classList.toggle("ce-todo", index > st.step);
      });
    });
    this.renderStepPanel(win, o, y, x, where, stepText);
    this.announce(stepText + ": " + where + " = " + fmt(win.value) + ", window rows " + top + " to " +
      (top + geo.extents[0] - 1) + ", columns " + left + " to " + (left + geo.extents[1] - 1) + " of the padded input.");
  };

  P.renderStepPanel = function (win, o, y, x, where, stepText) {
    var st = this.state, p = this.stepPanel, many = win.channels.length > 1;
    p.textContent = "";
    var flipped = st.mode === "convolution";
    p.appendChild(el("p", { className: "ce-step-title" }, [el("strong", { text: stepText + ": " }),
      document.createTextNode("1. place the window at row " + win.top + ", column " + win.left + " of the padded input; " +
        "2. multiply by the " + (flipped ? "flipped kernel" : "kernel") + "; 3. sum; 4. slide by the stride " + st.stride +
        "; 5. the sum is " + where + ".")]));
    var rows = el("div", { className: "ce-products" });
    win.channels.forEach(function (ch, c) {
      var small = function (values, label, format) {
        var g = grid(values.length, values[0].length, label, function (i, j) {
          return el("div", { className: "ce-cell ce-small", text: (format || fmt)(values[i][j]) });
        });
        g.classList.add("ce-fit");
        g.style.setProperty("--cell", "2.1rem");
        return g;
      };
      var name = many ? " (channel " + c + ")" : "";
      rows.appendChild(el("div", { className: "ce-product-row" }, [
        el("div", { className: "ce-map" }, [el("p", { className: "ce-map-title", text: "window" + name }), small(ch.window, "Window" + name)]),
        el("span", { className: "ce-op", "aria-hidden": "true", text: "\u00d7" }),
        el("div", { className: "ce-map" }, [el("p", { className: "ce-map-title", text: (flipped ? "flipped kernel" : "kernel") + name }),
          small(ch.kernel, (flipped ? "Flipped kernel" : "Kernel") + name, fmtWeight)]),
        el("span", { className: "ce-op", "aria-hidden": "true", text: "=" }),
        el("div", { className: "ce-map" }, [el("p", { className: "ce-map-title", text: "products" + name }), small(ch.products, "Products" + name)]),
      ]));
    });
    p.appendChild(rows);
    var terms;
    if (many) {
      terms = win.channels.map(function (ch, c) { return "channel " + c + ": " + fmt(ch.sum); });
    } else {
      terms = [];
      win.channels[0].products.forEach(function (row) { row.forEach(function (v) { terms.push(fmt(v)); }); });
    }
    var sum = terms.join(" + ").replace(/\+ \u2212/g, "\u2212 ");
    if (st.bias) sum += " + bias " + fmt(win.bias);
    p.appendChild(el("p", { className: "ce-sum" }, [document.createTextNode("Sum: " + sum + " = "),
      el("strong", { className: "ce-sum-value", text: fmt(win.value) }),
      document.createTextNode(" \u2192 " + where + ".")]));
  };

  P.announce = function (text) {
    if (this.live.textContent !== text) this.live.textContent = text;
  };

  P.goTo = function (step) {
    if (!this.result) return;
    var steps = this.state.weights.length * this.result.geo.out[0] * this.result.geo.out[1];
    this.state.step = Math.max(0, Math.min(step, steps - 1));
    this.showStep();
  };

  P.togglePlay = function () {
    if (this.playing) { this.stop(); return; }
    if (!this.result) return;
    var self = this, steps = this.state.weights.length * this.result.geo.out[0] * this.result.geo.out[1];
    if (this.state.step >= steps - 1) this.goTo(0);
    this.playButton.textContent = "Pause";
    this.playing = window.setInterval(function () {
      if (!self.result || self.state.step >= steps - 1) { self.stop(); return; }
      self.goTo(self.state.step + 1);
    }, 1000);
  };

  P.stop = function () {
    if (this.playing) window.clearInterval(this.playing);
    this.playing = null;
    this.playButton.textContent = "Play";
  };

  /** The JavaScript API (see the top of this file). */
  P.api = function () {
    var self = this;
    return {
      getState: function () { return clone(self.state); },
      setState: function (partial) {
        var st = clone(self.state);
        Object.keys(partial).forEach(function (k) {
          if (k === "kernel") st.weights = [[clone(partial.kernel)]];
          else if (k === "input" && Array.isArray(partial.input) && Array.isArray(partial.input[0]) &&
                   !Array.isArray(partial.input[0][0])) st.input = [clone(partial.input)];
          else if (["input", "weights", "bias", "stride", "padding", "dilation", "mode", "step"].indexOf(k) >= 0) st[k] = clone(partial[k]);
          else throw new Error(k + ": not a setting; expected input, kernel, weights, bias, stride, padding, dilation, mode or step");
        });
        if (st.bias === undefined) st.bias = null;
        st.step = st.step || 0;
        self.stop();
        self.state = normalise(st);
        self.cellErrors = {};
        self.fieldError = null;
        self.memory = null;
        self.structure = "";
        self.render();
      },
      getOutput: function () { return self.result && !self.error ? clone(self.result.output) : null; },
      getError: function () { return self.error; },
      getInfo: function () {
        var geo = self.result ? self.result.geo : null;
        return { pads: geo ? geo.pads : null, outputSize: geo ? geo.out : null, params: paramCount(self.state),
          steps: geo ? self.state.weights.length * geo.out[0] * geo.out[1] : null };
      },
      loadPreset: function (name) { self.loadPreset(name); },
      goTo: function (step) { self.stop(); self.goTo(step); },
    };
  };

  function init() {
    document.querySelectorAll(".conv-explorer:not(.ce-ready)").forEach(function (root) {
      var explorer = new Explorer(root);
      root.convExplorer = explorer.api();
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
