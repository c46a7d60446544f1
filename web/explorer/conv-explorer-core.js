/* Convolution explorer, the numbers: a pure JavaScript model of one convolution layer,
 * with conv_lib's semantics and error messages (no DOM; conv-explorer.js draws it).
 *
 * Cross-correlation is conv_lib.conv2d (torch semantics); convolution is the same with the
 * kernel flipped. Padding "valid" / "same" / "full" follows conv_lib.correlate2d / convolve2d
 * (scipy): for an even (dilated) kernel "same" puts the extra zero after the image for
 * cross-correlation and before it for convolution; "same" with a stride > 1 is refused as
 * conv_lib.conv2d refuses it; a kernel larger than the padded input gets
 * conv_lib.output_size's message. tests/test_explorer.py checks all of it against conv_lib.
 *
 * A state is {input: [C_in][H][W], weights: [C_out][C_in][kH][kW], bias: [C_out] or null,
 * stride, padding, dilation, mode: "convolution" | "correlation", step}.
 * Exposed as window.ConvExplorerCore.
 */
(function () {
  "use strict";

  var LIMITS = {
    rows: [1, 12], cols: [1, 12], krows: [1, 5], kcols: [1, 5],
    stride: [1, 4], dilation: [1, 3], cin: [1, 3], cout: [1, 3],
  };
  var PADDINGS = ["0", "1", "2", "3", "4", "5", "valid", "same", "full"];
  var MINUS = "\u2212";
  var SUMMARY_IMAGE = [[1, 2, 3, 0, 0], [4, 5, 6, 0, 0], [7, 8, 9, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]];
  var SUMMARY_KERNEL = [[1, 0, -1], [1, 0, -1], [1, 0, -1]];
  var SOBEL_X = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]];
  var PRESETS = {
    summary: "The one-page summary's 5\u00d75 example",
    sobel: "Sobel (x) on a vertical edge",
    box: "Box blur (3\u00d73 mean)",
    random: "Random integers (current sizes)",
    layer: "A layer: 3 channels, 2 filters, bias",
  };

  // --- numbers ----------------------------------------------------------------------------

  var NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
  var FRACTION = /^([+-]?(?:\d+\.?\d*|\.\d+))\s*\/\s*(\d+\.?\d*|\.\d+)$/;

  /** The number a cell's text stands for ("3", "-1.5", "1/9"), or NaN. */
  function parseNumber(text) {
    var t = String(text).trim().replace(MINUS, "-");
    if (NUMBER.test(t)) return Number(t);
    var m = FRACTION.exec(t);
    if (m && Number(m[2]) !== 0) return Number(m[1]) / Number(m[2]);
    return NaN;
  }

  /** A short, readable form of a number (integers exactly, others to 3 decimals). */
  function fmt(v) {
    if (Object.is(v, -0)) v = 0;
    var s;
    if (Number.isInteger(v)) s = String(v);
    else if (Math.abs(v) >= 1000) s = v.toPrecision(4);
    else s = String(parseFloat(v.toFixed(3)));
    return s.replace("-", MINUS);
  }

  /** A kernel weight as shown: a simple fraction (the box kernel's 1/9) or as `fmt`. */
  function fmtWeight(v) {
    var text = cellText(v);
    return text.indexOf("/") > 0 ? text.replace("-", MINUS) : fmt(v);
  }

  /** Source text of a number for an editable cell (fractions of the box kernel stay 1/9). */
  function cellText(v) {
    if (Number.isInteger(v)) return String(v);
    for (var q = 2; q <= 25; q++) {
      var p = Math.round(v * q);
      if (p !== 0 && p / q === v) return p + "/" + q;
    }
    return String(v);
  }

  function mulberry32(seed) {
    return function () {
      seed = (seed + 0x6d2b79f5) | 0;
      var t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function randomInts(rand, lo, hi, shape) {
    if (shape.length === 0) return lo + Math.floor(rand() * (hi - lo + 1));
    var out = [];
    for (var i = 0; i < shape[0]; i++) out.push(randomInts(rand, lo, hi, shape.slice(1)));
    return out;
  }

  /** `grid` resized to rows x cols, keeping what fits and filling with zeros. */
  function resize(grid, rows, cols) {
    var out = [];
    for (var i = 0; i < rows; i++) {
      var row = [];
      for (var j = 0; j < cols; j++) row.push(grid && grid[i] && grid[i][j] !== undefined ? grid[i][j] : 0);
      out.push(row);
    }
    return out;
  }

  function clone(x) { return JSON.parse(JSON.stringify(x)); }

  /** `old` grown to hold `grid`, with `grid`'s values written over it. */
  function overlay(old, grid) {
    var rows = Math.max(old ? old.length : 0, grid.length);
    var cols = Math.max(old && old[0] ? old[0].length : 0, grid[0].length);
    var out = resize(old, rows, cols);
    grid.forEach(function (row, i) { row.forEach(function (v, j) { out[i][j] = v; }); });
    return out;
  }

  // --- the computation (pure functions of the state) --------------------------------------

  function ExplorerError(message) { this.message = message; }

  /** Zeros [before, after] along one axis for a kernel of `k` taps. */
  function axisPads(padding, k, d, flipped) {
    var total = d * (k - 1); // the dilated kernel spans total + 1 pixels
    if (padding === "valid") return [0, 0];
    if (padding === "full") return [total, total];
    if (padding === "same") {
      var small = Math.floor(total / 2);
      // scipy: correlate2d puts the extra zero after the image, convolve2d before it.
      return flipped ? [total - small, small] : [small, total - small];
    }
    return [padding, padding];
  }

  /** Pads, spans and output size of the state; throws ExplorerError with conv_lib's wording. */
  function geometry(st) {
    var h = st.input[0].length, w = st.input[0][0].length;
    var kh = st.weights[0][0].length, kw = st.weights[0][0][0].length;
    var s = st.stride, d = st.dilation, flipped = st.mode === "convolution";
    if (st.padding === "same" && s !== 1) {
      throw new ExplorerError("padding: got 'same' with stride (" + s + ", " + s + "); expected stride 1 " +
        "(padding='same' is not supported for strided convolutions, as in torch)");
    }
    var pads = [axisPads(st.padding, kh, d, flipped), axisPads(st.padding, kw, d, flipped)];
    var sizes = [[h, kh], [w, kw]], out = [], extents = [], padded = [];
    for (var a = 0; a < 2; a++) {
      var n = sizes[a][0], k = sizes[a][1], e = d * (k - 1) + 1, np = n + pads[a][0] + pads[a][1];
      if (e > np) { // conv_lib.output_size's message (symmetric padding: the only case that fails)
        var dilated = d > 1 ? " (spanning " + e + " pixels with dilation " + d + ")" : "";
        throw new ExplorerError("kernel: got " + k + dilated + "; expected at most the padded input length " +
          "n + 2*padding = " + n + " + 2*" + pads[a][0] + " = " + np);
      }
      extents.push(e);
      padded.push(np);
      out.push(Math.floor((np - e) / s) + 1);
    }
    return { pads: pads, extents: extents, padded: padded, out: out, kernel: [kh, kw], size: [h, w] };
  }

  /** The padded input of channel c, as a function of padded coordinates. */
  function paddedValue(st, geo, c, r, q) {
    var i = r - geo.pads[0][0], j = q - geo.pads[1][0];
    if (i < 0 || j < 0 || i >= geo.size[0] || j >= geo.size[1]) return 0;
    return st.input[c][i][j];
  }

  /** The kernel tap applied to window offset (i, j): flipped for a convolution. */
  function usedKernel(st, o, c, i, j) {
    var k = st.weights[o][c];
    return st.mode === "convolution" ? k[k.length - 1 - i][k[0].length - 1 - j] : k[i][j];
  }

  /** Steps 1-3 for one output cell: every channel's window, kernel, products and their sums. */
  function windowAt(st, geo, o, y, x) {
    var kh = geo.kernel[0], kw = geo.kernel[1], s = st.stride, d = st.dilation;
    var channels = [], total = 0;
    for (var c = 0; c < st.input.length; c++) {
      var win = [], ker = [], prod = [], sum = 0;
      for (var i = 0; i < kh; i++) {
        win.push([]); ker.push([]); prod.push([]);
        for (var j = 0; j < kw; j++) {
          var a = paddedValue(st, geo, c, s * y + d * i, s * x + d * j), b = usedKernel(st, o, c, i, j);
          win[i].push(a); ker[i].push(b); prod[i].push(a * b);
          sum += a * b;
        }
      }
      channels.push({ window: win, kernel: ker, products: prod, sum: sum });
      total += sum;
    }
    var bias = st.bias ? st.bias[o] : 0;
    return { channels: channels, bias: bias, value: total + bias, top: s * y, left: s * x };
  }

  function compute(st) {
    var geo = geometry(st), out = [];
    for (var o = 0; o < st.weights.length; o++) {
      var map = [];
      for (var y = 0; y < geo.out[0]; y++) {
        var row = [];
        for (var x = 0; x < geo.out[1]; x++) row.push(windowAt(st, geo, o, y, x).value);
        map.push(row);
      }
      out.push(map);
    }
    return { geo: geo, output: out };
  }

  function paramCount(st) {
    var cout = st.weights.length, cin = st.input.length;
    return cout * cin * st.weights[0][0].length * st.weights[0][0][0].length + (st.bias ? cout : 0);
  }

  // --- presets ------------------------------------------------------------------------------

  function preset(name, current, seed) {
    var base = { stride: 1, padding: "valid", dilation: 1, mode: "correlation", bias: null, step: 0 };
    if (name === "summary") {
      return Object.assign(base, { input: [clone(SUMMARY_IMAGE)], weights: [[clone(SUMMARY_KERNEL)]],
        mode: "convolution" });
    }
    if (name === "sobel") {
      var edge = [];
      for (var i = 0; i < 6; i++) edge.push([0, 0, 0, 9, 9, 9]);
      return Object.assign(base, { input: [edge], weights: [[clone(SOBEL_X)]] });
    }
    if (name === "box") {
      var img = randomInts(mulberry32(3), 0, 9, [6, 6]);
      return Object.assign(base, { input: [img], weights: [[resize([], 3, 3).map(function (r) {
        return r.map(function () { return 1 / 9; });
      })]], padding: "same" });
    }
    if (name === "layer") { // cs231n's demo: 5x5x3 input, padding 1, two 3x3x3 filters, stride 2
      var rand = mulberry32(231);
      return Object.assign(base, { input: randomInts(rand, 0, 2, [3, 5, 5]),
        weights: randomInts(rand, -1, 1, [2, 3, 3, 3]), bias: [1, 0], stride: 2, padding: 1 });
    }
    if (name === "random") {
      var r = mulberry32(seed), st = clone(current);
      st.input = randomInts(r, 0, 9, [st.input.length, st.input[0].length, st.input[0][0].length]);
      st.weights = randomInts(r, -2, 2, [st.weights.length, st.weights[0].length,
        st.weights[0][0].length, st.weights[0][0][0].length]);
      if (st.bias) st.bias = randomInts(r, -2, 2, [st.weights.length]);
      st.step = 0;
      return st;
    }
    throw new Error("preset: got " + JSON.stringify(name) + "; expected one of " + Object.keys(PRESETS).join(", "));
  }

  // --- checking what the API is given --------------------------------------------------------

  function checkInt(name, v, lo, hi) {
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new Error(name + ": got " + JSON.stringify(v) + "; expected an integer from " + lo + " to " + hi);
    }
    return v;
  }

  function checkGrid(name, g, limit) {
    if (!Array.isArray(g) || !g.length || !Array.isArray(g[0]) || !g[0].length ||
        g.length > limit[0] || g[0].length > limit[1] ||
        !g.every(function (row) { return Array.isArray(row) && row.length === g[0].length; })) {
      throw new Error(name + ": got " + JSON.stringify(g).slice(0, 60) + "; expected a rectangular grid of " +
        "at most " + limit[0] + "x" + limit[1] + " numbers");
    }
    g.forEach(function (row) {
      row.forEach(function (v) {
        if (typeof v !== "number" || !isFinite(v)) throw new Error(name + ": got " + JSON.stringify(v) + "; expected numbers");
      });
    });
    return g;
  }

  function normalise(st) {
    var cin = checkInt("input channels", st.input.length, LIMITS.cin[0], LIMITS.cin[1]);
    st.input.forEach(function (g, c) { checkGrid("input[" + c + "]", g, [12, 12]); });
    st.input.forEach(function (g, c) {
      if (g.length !== st.input[0].length || g[0].length !== st.input[0][0].length) {
        throw new Error("input[" + c + "]: got a different size from channel 0; expected channels of one size");
      }
    });
    checkInt("filters", st.weights.length, LIMITS.cout[0], LIMITS.cout[1]);
    st.weights.forEach(function (f, o) {
      if (!Array.isArray(f) || f.length !== cin) {
        throw new Error("weights[" + o + "]: got " + (Array.isArray(f) ? f.length : typeof f) +
          " slices; expected " + cin + ", one per input channel");
      }
      f.forEach(function (g, c) {
        checkGrid("weights[" + o + "][" + c + "]", g, [5, 5]);
        if (g.length !== st.weights[0][0].length || g[0].length !== st.weights[0][0][0].length) {
          throw new Error("weights[" + o + "][" + c + "]: got a different size from weights[0][0]; expected one kernel size");
        }
      });
    });
    if (st.bias !== null) {
      if (!Array.isArray(st.bias) || st.bias.length !== st.weights.length ||
          !st.bias.every(function (v) { return typeof v === "number" && isFinite(v); })) {
        throw new Error("bias: got " + JSON.stringify(st.bias) + "; expected null or " + st.weights.length +
          " numbers, one per filter");
      }
    }
    checkInt("stride", st.stride, LIMITS.stride[0], LIMITS.stride[1]);
    checkInt("dilation", st.dilation, LIMITS.dilation[0], LIMITS.dilation[1]);
    if (typeof st.padding === "string" && /^\d+$/.test(st.padding)) st.padding = Number(st.padding);
    if (PADDINGS.indexOf(String(st.padding)) < 0) {
      throw new Error("padding: got " + JSON.stringify(st.padding) + "; expected an integer from 0 to 5, " +
        "'valid', 'same' or 'full'");
    }
    if (st.mode !== "convolution" && st.mode !== "correlation") {
      throw new Error("mode: got " + JSON.stringify(st.mode) + "; expected 'convolution' or 'correlation'");
    }
    return st;
  }

  window.ConvExplorerCore = {
    LIMITS: LIMITS, PADDINGS: PADDINGS, PRESETS: PRESETS, ExplorerError: ExplorerError,
    parseNumber: parseNumber, fmt: fmt, fmtWeight: fmtWeight, cellText: cellText, resize: resize,
    clone: clone, overlay: overlay, axisPads: axisPads, geometry: geometry, windowAt: windowAt,
    compute: compute, paramCount: paramCount, preset: preset, normalise: normalise,
  };
})();
