// The pbt report's charts: plain SVG built with DOM calls from the JSON in #pbt-data.
// Every value from the run is set with textContent or setAttribute, never parsed as HTML.
(function () {
  'use strict';
  var NS = 'http://www.w3.org/2000/svg';
  // Tableau 10: distinguishable, and readable on white.
  var PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#17becf'];
  var DIED = '#c9ced3';      // lineages with no member in the final population
  var OTHER_LIVE = '#8d99a6'; // surviving lineages beyond the palette
  var BIG_TREE = 6000;        // nodes drawn one element each up to this many
  var BIG_LINES = 6000;       // hyperparameter segments drawn one element each up to this many

  function reportError(msg) {
    var box = document.getElementById('errors');
    if (!box) return;
    box.hidden = false;
    var p = document.createElement('p');
    p.setAttribute('data-error', '1');
    p.textContent = msg;
    box.appendChild(p);
  }
  window.addEventListener('error', function (e) { reportError('script error: ' + e.message); });
  document.addEventListener('securitypolicyviolation', function (e) {
    reportError('blocked by the page\'s content security policy: ' + e.blockedURI);
  });

  var data = JSON.parse(document.getElementById('pbt-data').textContent);
  var state = { colorBy: null, selected: null };
  var clipId = 0;

  // ---- small helpers ---------------------------------------------------------------
  function S(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function H(tag, attrs, text, parent) {
    var e = document.createElement(tag);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function title(el, text) { S('title', {}, el).textContent = text; return el; }
  function clear(id) { var e = document.getElementById(id); while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function fmt(v) {
    if (v === null || v === undefined || (typeof v === 'number' && !isFinite(v))) return '-';
    if (typeof v === 'string') return v;
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2).replace(/\.?0+e/, 'e');
    return String(+v.toPrecision(4));
  }
  function r1(v) { return Math.round(v * 10) / 10; }

  function niceStep(span, n) {
    var raw = span / Math.max(1, n);
    var mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var f = raw / mag;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  }
  function linearTicks(lo, hi, n) {
    if (!(hi > lo)) return [lo];
    var step = niceStep(hi - lo, n), out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }
  function scale(d0, d1, r0, r1_, log) {
    if (log) {
      var l0 = Math.log10(d0), l1 = Math.log10(d1), kl = l1 === l0 ? 0 : (r1_ - r0) / (l1 - l0);
      var fl = function (v) { return r0 + (Math.log10(v) - l0) * kl; };
      fl.ticks = function () {
        var out = [];
        for (var p = Math.floor(l0); p <= Math.ceil(l1); p++)
          [1, 2, 5].forEach(function (m) { var v = m * Math.pow(10, p); if (v >= d0 * 0.999 && v <= d1 * 1.001) out.push(v); });
        return out.length ? out : [d0, d1];
      };
      return fl;
    }
    var k = d1 === d0 ? 0 : (r1_ - r0) / (d1 - d0);
    var f = function (v) { return r0 + (v - d0) * k; };
    f.ticks = function (n) { return linearTicks(d0, d1, n); };
    return f;
  }
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < values.length; i++) { var v = values[i]; if (v !== null && isFinite(v)) { if (v < lo) lo = v; if (v > hi) hi = v; } }
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { var d = Math.abs(lo) * 0.05 || 0.5; return [lo - d, hi + d]; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }

  // A chart: title, axes with ticks and labels, a clipped plot area.
  // y may be {cats: [...]} (categorical bands), {log: true} or linear.
  function frame(box, o) {
    var W = o.width || Math.max(420, Math.min(box.clientWidth || 960, 1340)), Hh = o.height || 340;
    var M = { l: o.left || 66, r: o.right || 30, t: 30, b: 44 };
    var svg = S('svg', { width: W, height: Hh, viewBox: '0 0 ' + W + ' ' + Hh, class: 'chart-svg', role: 'img' }, box);
    if (o.id) svg.setAttribute('id', o.id);
    svg.setAttribute('aria-label', o.title);
    S('text', { x: M.l, y: 18, class: 'chart-title' }, svg).textContent = o.title;
    var x = scale(o.x[0], o.x[1], M.l, W - M.r, false);
    var y, cats = o.y.cats;
    if (cats) {
      var band = (Hh - M.t - M.b) / Math.max(1, cats.length);
      var idx = new Map(cats.map(function (c, i) { return [c, i]; }));
      y = function (v) { var i = idx.has(v) ? idx.get(v) : 0; return Hh - M.b - band * (i + 0.5); };
    } else {
      y = scale(o.y[0], o.y[1], Hh - M.b, M.t, o.y.log);
    }
    var ax = S('g', { class: 'axis' }, svg);
    // x: ticks and grid
    x.ticks(Math.max(2, Math.floor((W - M.l - M.r) / 90))).forEach(function (t) {
      var px = r1(x(t)) + 0.5;
      S('line', { x1: px, x2: px, y1: M.t, y2: Hh - M.b, class: 'gridline' }, ax);
      S('line', { x1: px, x2: px, y1: Hh - M.b, y2: Hh - M.b + 4 }, ax);
      S('text', { x: px, y: Hh - M.b + 16, 'text-anchor': 'middle' }, ax).textContent = fmt(t);
    });
    var yt = cats ? cats : (o.y.log ? y.ticks() : y.ticks(Math.max(2, Math.floor((Hh - M.t - M.b) / 45))));
    yt.forEach(function (t) {
      var py = r1(y(t)) + 0.5;
      S('line', { x1: M.l, x2: W - M.r, y1: py, y2: py, class: 'gridline' }, ax);
      S('line', { x1: M.l - 4, x2: M.l, y1: py, y2: py }, ax);
      var label = cats ? String(t) : fmt(t);
      var tx = S('text', { x: M.l - 7, y: py + 3.5, 'text-anchor': 'end' }, ax);
      tx.textContent = label.length > 10 ? label.slice(0, 9) + '\u2026' : label;
      if (label.length > 10) title(tx, label);
    });
    S('path', { d: 'M' + M.l + ',' + M.t + 'V' + (Hh - M.b) + 'H' + (W - M.r), fill: 'none' }, ax);
    S('text', { x: (M.l + W - M.r) / 2, y: Hh - 8, 'text-anchor': 'middle', class: 'axis-label' }, svg).textContent = o.xlabel;
    var yl = S('text', { transform: 'translate(14,' + ((M.t + Hh - M.b) / 2) + ') rotate(-90)', 'text-anchor': 'middle', class: 'axis-label' }, svg);
    yl.textContent = o.ylabel.length > 28 ? o.ylabel.slice(0, 27) + '\u2026' : o.ylabel;
    if (o.ylabel.length > 28) title(yl, o.ylabel);
    var id = 'clip' + (++clipId);
    S('rect', { x: M.l - 6, y: M.t - 6, width: W - M.l - M.r + 12, height: Hh - M.t - M.b + 12 }, S('clipPath', { id: id }, S('defs', {}, svg)));
    var plot = S('g', { 'clip-path': 'url(#' + id + ')' }, svg);
    return { svg: svg, x: x, y: y, plot: plot, W: W, H: Hh, M: M };
  }

  // ---- colours -----------------------------------------------------------------------
  var lineageColor, memberIndex;
  function setupColors() {
    var map = new Map(), i = 0;
    data.lineages.forEach(function (l) { if (l.final > 0) map.set(l.root, i < PALETTE.length ? PALETTE[i++] : OTHER_LIVE); });
    lineageColor = function (root) { return map.get(root) || DIED; };
    memberIndex = new Map(data.members.map(function (m, k) { return [m.id, k]; }));
  }
  function memberColor(id) {
    var k = memberIndex.has(id) ? memberIndex.get(id) : id;
    if (data.members.length <= PALETTE.length) return PALETTE[k % PALETTE.length];
    return 'hsl(' + Math.round((k * 137.508) % 360) + ',62%,46%)';
  }
  function pieceColor(member, root) { return state.colorBy === 'member' ? memberColor(member) : lineageColor(root); }

  function legendItem(box, kind, color, text) {
    var it = H('span', { class: 'item' }, null, box);
    var sw = H('span', { class: kind }, null, it);
    if (kind === 'swatch') sw.style.background = color;
    if (kind === 'dot') sw.style.background = color;
    if (kind === 'dash') sw.style.borderTopColor = color;
    H('span', {}, text, it);
  }
  function lineageLegend(box) {
    if (state.colorBy === 'member') {
      if (data.members.length <= 12)
        data.members.forEach(function (m) { legendItem(box, 'swatch', memberColor(m.id), 'member ' + m.id); });
      else H('span', {}, 'colour: member (hover a line for its member)', box);
      return;
    }
    var shown = 0, died = 0;
    data.lineages.forEach(function (l) {
      if (l.final > 0 && shown < PALETTE.length) {
        legendItem(box, 'swatch', lineageColor(l.root), 'from member ' + l.root + '\u2019s model (' + l.final + ' of ' + data.members.length + ' now)');
        shown++;
      } else if (l.final === 0) died++;
    });
    if (data.lineages.some(function (l) { return l.final > 0; }) && shown < data.lineages.filter(function (l) { return l.final > 0; }).length)
      legendItem(box, 'swatch', OTHER_LIVE, 'other surviving lineages');
    if (died) legendItem(box, 'swatch', DIED, died + ' lineage' + (died === 1 ? '' : 's') + ' that died out');
  }

  function maxStep() {
    var m = data.budget || 0;
    data.members.forEach(function (x) { if (x.step > m) m = x.step; });
    return Math.max(m, 1);
  }

  // ---- score curves ------------------------------------------------------------------
  function drawScores() {
    var box = clear('chart-scores'), legend = clear('scores-legend');
    var all = [];
    data.curves.forEach(function (c) { c.pieces.forEach(function (p) { all.push.apply(all, p.v); if (p.jump !== null) all.push(p.jump); }); });
    var labelled = data.curves.length <= 12;
    var f = frame(box, { id: 'scores-svg', title: 'Score of every member by training step', xlabel: 'training step', ylabel: 'score',
      x: [0, maxStep()], y: extent(all), height: 380, right: labelled ? 64 : 30 });
    lineageLegend(legend);
    // Lines of lineages that died out first, so that surviving ones stay on top.
    var order = data.curves.slice().sort(function (a, b) {
      var la = a.pieces.length ? lineageColor(a.pieces[a.pieces.length - 1].root) !== DIED : false;
      var lb = b.pieces.length ? lineageColor(b.pieces[b.pieces.length - 1].root) !== DIED : false;
      return (la ? 1 : 0) - (lb ? 1 : 0);
    });
    order.forEach(function (c) {
      var g = S('g', { class: 'curve', 'data-curve-member': c.member, 'data-member': c.member }, f.plot);
      c.pieces.forEach(function (p) {
        var color = pieceColor(c.member, p.root), d = '', pen = false, n = 0;
        for (var i = 0; i < p.s.length; i++) {
          if (p.v[i] === null) { pen = false; continue; }
          d += (pen ? 'L' : 'M') + r1(f.x(p.s[i])) + ',' + r1(f.y(p.v[i]));
          pen = true; n++;
        }
        if (p.jump !== null && p.v[0] !== null) {
          var jx = r1(f.x(p.s[0]));
          title(S('path', { class: 'jump', d: 'M' + jx + ',' + r1(f.y(p.jump)) + 'V' + r1(f.y(p.v[0])), stroke: color }, g),
            'member ' + c.member + ' copied a better model at step ' + p.s[0] + ': score ' + fmt(p.jump) + ' \u2192 ' + fmt(p.v[0]));
        }
        if (!n) return;
        if (n === 1) d += 'h0.01';
        var path = S('path', { class: 'line', d: d, stroke: color }, g);
        title(path, 'member ' + c.member + ', steps ' + p.s[0] + '\u2013' + p.s[p.s.length - 1] + ', model from member ' + p.root +
          '\u2019s lineage; score ' + fmt(p.v[p.v.length - 1]) + ' at step ' + p.s[p.s.length - 1]);
      });
      g.addEventListener('mouseenter', function () { hover(f.svg, c.member, true); });
      g.addEventListener('mouseleave', function () { hover(f.svg, c.member, false); });
    });
    if (labelled) endLabels(f);
    var note = 'One line per member (' + data.curves.length + '); a dashed vertical step is a copy (exploit): the member took a better member\u2019s model.';
    if (data.thinned > 1) note += ' Large run: every ' + data.thinned + 'th eval is drawn (plus the ends of each piece).';
    document.getElementById('scores-note').textContent = note;
  }

  // Member names at the right end of each line, pushed apart where they would overlap.
  function endLabels(f) {
    var ends = [];
    data.curves.forEach(function (c) {
      for (var k = c.pieces.length - 1; k >= 0; k--) {
        var p = c.pieces[k];
        for (var i = p.s.length - 1; i >= 0; i--) if (p.v[i] !== null) {
          ends.push({ m: c.member, x: f.x(p.s[i]), y: f.y(p.v[i]), color: pieceColor(c.member, p.root) });
          return;
        }
      }
    });
    ends.sort(function (a, b) { return a.y - b.y; });
    for (var i = 1; i < ends.length; i++) if (ends[i].y - ends[i - 1].y < 11) ends[i].y = ends[i - 1].y + 11;
    ends.forEach(function (e) {
      S('text', { x: r1(e.x + 5), y: r1(e.y + 3.5), fill: e.color, 'font-weight': 600, 'data-member': e.m }, f.svg).textContent = 'm' + e.m;
    });
  }

  function hover(svg, member, on) {
    if (state.selected !== null) return;
    svg.classList.toggle('dim', on);
    svg.querySelectorAll('[data-member="' + member + '"]').forEach(function (e) { e.classList.toggle('hl', on); });
  }
  function select(member) {
    state.selected = state.selected === member ? null : member;
    document.querySelectorAll('svg.chart-svg').forEach(function (svg) {
      svg.classList.toggle('dim', state.selected !== null);
      svg.querySelectorAll('.hl').forEach(function (e) { e.classList.remove('hl'); });
      if (state.selected !== null) svg.querySelectorAll('[data-member="' + state.selected + '"]').forEach(function (e) { e.classList.add('hl'); });
    });
    document.querySelectorAll('#members-table tbody tr').forEach(function (tr) {
      tr.classList.toggle('selected', String(state.selected) === tr.getAttribute('data-member'));
    });
  }

  // ---- h of a member at a step (for titles) -------------------------------------------
  var historyOf;
  function setupHistory() {
    historyOf = new Map();
    data.history.forEach(function (h) { historyOf.set(h.member, h.segs); });
  }
  function hText(values) {
    return data.params.map(function (p, i) { return p.name + '=' + fmt(values[i]); }).join(' ');
  }
  function hAfter(member, step) { // h published at `step` (after any event there)
    var segs = historyOf.get(member);
    if (!segs || !segs.length) return null;
    var best = segs[0];
    for (var i = 0; i < segs.length; i++) if (segs[i][0] <= step) best = segs[i];
    return best[5];
  }

  // ---- the lineage tree ----------------------------------------------------------------
  // Codes the page data uses for compactness: a segment's cause is kind_code() in
  // page_data.cpp (0: initial, then EventKind's order); a tree link t.k is report::Link
  // (tree.hpp: 0 none, 1 train, 2 copy, 3 recover).
  var KIND = ['', 'exploit', 'explore', 'recover'];
  function drawTree() {
    var box = clear('chart-tree'), legend = clear('tree-legend'), t = data.tree, n = t.m.length;
    var ext = extent(t.v);
    var f = frame(box, { id: 'tree-svg', title: 'Lineage tree: who copied whom (node: a member\u2019s published score at the end of an interval)',
      xlabel: 'training step', ylabel: 'score', x: [0, maxStep()], y: ext, height: 440 });
    f.svg.setAttribute('data-tree-nodes', n);
    var big = n > BIG_TREE;
    var bottom = f.H - f.M.b;
    function X(i) { return r1(f.x(t.s[i])); }
    function Y(i) { return t.v[i] === null ? bottom : r1(f.y(t.v[i])); }
    function color(i) { return t.a[i] ? pieceColor(t.m[i], t.r[i]) : DIED; }

    // Training edges, batched by colour; faded ones first.
    var batches = new Map();
    function add(key, seg) { if (!batches.has(key)) batches.set(key, []); batches.get(key).push(seg); }
    var copyEdges = [];
    for (var i = 0; i < n; i++) {
      var p = t.p[i];
      if (p < 0) continue;
      if (t.k[i] === 1) add((t.a[i] ? 1 : 0) + '|' + color(i), 'M' + X(p) + ',' + Y(p) + 'L' + X(i) + ',' + Y(i));
      else copyEdges.push(i);
    }
    var keys = Array.from(batches.keys()).sort();
    keys.forEach(function (k) {
      var parts = k.split('|');
      S('path', { class: 'tree-edge', d: batches.get(k).join(''), stroke: parts[1], 'stroke-width': parts[0] === '1' ? 1.8 : 1,
        'stroke-opacity': parts[0] === '1' ? 0.95 : 0.7, 'data-edge-kind': 'train' }, f.plot);
    });
    // Copies (exploit) and recoveries: dashed, donor -> copier.
    var copyBatch = { 1: '', 0: '' };
    copyEdges.forEach(function (i) {
      var p = t.p[i], d = 'M' + X(p) + ',' + Y(p) + 'L' + X(i) + ',' + Y(i);
      if (big) { copyBatch[t.a[i]] += d; return; }
      var e = t.e[i], ev = e >= 0 ? data.events[e] : null;
      var path = S('path', { class: 'tree-edge', d: d, stroke: color(i), 'stroke-width': t.a[i] ? 1.6 : 1,
        'stroke-dasharray': t.k[i] === 3 ? '1.5 2.5' : '4 3', 'data-tree-edge': t.k[i] === 3 ? 'recover' : 'copy', 'data-member': t.m[i] }, f.plot);
      var what = t.k[i] === 3 ? ' recovered from member ' : ' copied member ';
      title(path, 'member ' + t.m[i] + what + t.m[p] + '\u2019s model of step ' + t.s[p] +
        (ev && ev[6] !== null ? ' (own score ' + fmt(t.pre[i] !== null ? t.pre[i] : ev[6]) + ' \u2192 ' + fmt(t.v[i]) + ')' : ''));
    });
    if (big) {
      ['0', '1'].forEach(function (a) {
        if (copyBatch[a]) S('path', { class: 'tree-edge', d: copyBatch[a], stroke: a === '1' ? '#555' : DIED, 'stroke-width': 1,
          'stroke-dasharray': '4 3', 'data-edge-kind': 'copy' }, f.plot);
      });
    }
    t.hcopy.forEach(function (c) {
      var path = S('path', { class: 'tree-edge', d: 'M' + X(c[0]) + ',' + Y(c[0]) + 'L' + X(c[1]) + ',' + Y(c[1]), stroke: '#7f7f7f',
        'stroke-dasharray': '1 3', 'data-tree-edge': 'hcopy' }, f.plot);
      title(path, 'member ' + t.m[c[1]] + ' copied member ' + t.m[c[0]] + '\u2019s hyperparameters (not its model)');
    });

    // Nodes.
    if (!big) {
      var order = [];
      for (var j = 0; j < n; j++) order.push(j);
      order.sort(function (a, b) { return t.a[a] - t.a[b]; });
      order.forEach(function (i) {
        var last = data.members.some(function (m) { return m.id === t.m[i] && m.step === t.s[i]; });
        var c = S('circle', { class: 'tree-node', cx: X(i), cy: Y(i), r: (last ? 4.6 : (t.a[i] ? 3.2 : 2.6)) * (n <= 400 ? 1.25 : 1),
          fill: t.a[i] ? color(i) : '#ffffff', stroke: last ? '#1f2328' : (t.a[i] ? '#ffffff' : '#b8c0c8'),
          'data-tree-node': t.m[i] + ':' + t.s[i], 'data-member': t.m[i], 'data-ancestor': t.a[i] }, f.plot);
        var lines = ['member ' + t.m[i] + ', step ' + t.s[i] + ': score ' + fmt(t.v[i])];
        if (t.k[i] === 2) lines.push('copied member ' + t.m[t.p[i]] + '\u2019s model (own score was ' + fmt(t.pre[i]) + ')');
        if (t.k[i] === 3) lines.push('trained from member ' + t.m[t.p[i]] + '\u2019s model (own checkpoint unreadable)');
        var h = hAfter(t.m[i], t.s[i]);
        if (h) lines.push('h: ' + hText(h));
        lines.push('lineage: member ' + t.r[i] + (t.a[i] ? '; an ancestor of the final population' : '; died out'));
        title(c, lines.join('\n'));
      });
    } else {
      var dots = new Map();
      for (var q = 0; q < n; q++) {
        var key = (t.a[q] ? 1 : 0) + '|' + color(q);
        if (!dots.has(key)) dots.set(key, []);
        dots.get(key).push('M' + X(q) + ',' + Y(q) + 'h0');
      }
      Array.from(dots.keys()).sort().forEach(function (k) {
        var parts = k.split('|');
        S('path', { d: dots.get(k).join(''), stroke: parts[1], 'stroke-width': parts[0] === '1' ? 4.5 : 3, 'stroke-linecap': 'round',
          fill: 'none', 'data-tree-node-batch': dots.get(k).length }, f.plot);
      });
    }
    legendItem(legend, 'dot', '#ffffff', 'a member at the end of an interval (ringed: a member now)');
    legendItem(legend, 'swatch', '#555', 'kept training its own model');
    legendItem(legend, 'dash', '#555', 'copied a better member\u2019s model (donor \u2192 copier)');
    legendItem(legend, 'swatch', PALETTE[0], 'coloured: ancestors of the final population');
    legendItem(legend, 'swatch', DIED, 'grey: lines that died out');
    var anc = 0;
    for (var a = 0; a < n; a++) anc += t.a[a];
    var roots = data.lineages.filter(function (l) { return l.final > 0; }).length;
    var note = n + ' nodes, ' + copyEdges.length + ' copies. The ' + data.members.length + ' members now descend from ' + roots +
      ' of the ' + data.members.length + ' initial models; ' + anc + ' nodes are their ancestors.';
    if (!n) note = 'No member has finished an interval yet.';
    if (big) note += ' Large run: nodes are drawn without hover titles.';
    document.getElementById('tree-note').textContent = note;
  }

  // ---- hyperparameters -----------------------------------------------------------------
  function yFor(p, values) {
    if (p.kind === 'categorical') {
      var cats = p.choices.slice();
      values.forEach(function (v) { if (v !== null && cats.indexOf(v) < 0) cats.push(v); });
      return { cats: cats.length ? cats : ['-'] };
    }
    var lo = p.low, hi = p.high;
    var e = extent(values.filter(function (v) { return typeof v === 'number'; }));
    if (!(hi > lo)) { lo = e[0]; hi = e[1]; }
    lo = Math.min(lo, e[0] + (e[1] - e[0]) * 0.05 / 1.1);
    hi = Math.max(hi, e[1] - (e[1] - e[0]) * 0.05 / 1.1);
    if (p.log && lo > 0) { var lg = [lo / 1.15, hi * 1.15]; lg.log = true; return lg; }
    var pad = (hi - lo) * 0.04 || 0.5;
    return [lo - pad, hi + pad];
  }

  function drawHyper() {
    var grid = clear('chart-hyper');
    var segTotal = 0;
    data.history.forEach(function (h) { segTotal += h.segs.length; });
    var big = segTotal > BIG_LINES;
    data.params.forEach(function (p, pi) {
      var cell = H('div', { class: 'chart-cell' }, null, grid);
      var values = [];
      data.history.forEach(function (h) { h.segs.forEach(function (s) { values.push(s[5][pi]); }); });
      var f = frame(cell, { title: p.name + (p.log ? ' (log scale)' : ''), xlabel: 'training step', ylabel: p.name,
        x: [0, maxStep()], y: yFor(p, values), height: 280, width: Math.max(420, Math.min(cell.clientWidth || 600, 900)),
        left: p.kind === 'categorical' ? 84 : 66 });
      f.svg.setAttribute('data-param', p.name);
      var batches = new Map(), jumps = [];
      data.history.forEach(function (h) {
        var g = big ? null : S('g', { class: 'curve', 'data-h-member': h.member, 'data-member': h.member }, f.plot);
        var prev = null;
        h.segs.forEach(function (s) {
          var v = s[5][pi];
          if (v === null) { prev = null; return; }
          var x0 = r1(f.x(s[0])), x1 = r1(f.x(s[1])), y = r1(f.y(v));
          var d = prev !== null ? 'M' + x0 + ',' + prev + 'V' + y + 'H' + x1 : 'M' + x0 + ',' + y + 'H' + x1;
          if (x1 === x0 && prev === null) d += 'h0.01';
          var color = pieceColor(h.member, s[2]);
          if (big) {
            if (!batches.has(color)) batches.set(color, []);
            batches.get(color).push(d);
          } else {
            title(S('path', { class: 'line', d: d, stroke: color }, g),
              'member ' + h.member + ', steps ' + s[0] + '\u2013' + s[1] + ': ' + p.name + ' = ' + fmt(v));
          }
          if (s[3] === 1 && prev !== null) jumps.push([x0, y, h.member, s, v]);
          prev = y;
        });
      });
      // Lines that died out underneath, faint; the surviving lineages on top.
      Array.from(batches.keys()).sort(function (a, b) { return (b === DIED) - (a === DIED); }).forEach(function (color) {
        S('path', { class: 'line', d: batches.get(color).join(''), stroke: color, fill: 'none', 'stroke-width': 1,
          'stroke-opacity': color === DIED ? 0.45 : 0.8 }, f.plot);
      });
      if (!big) {
        jumps.forEach(function (j) {
          var c = S('circle', { cx: j[0], cy: j[1], r: 3.2, fill: '#fff', stroke: '#333', 'stroke-width': 1.1, 'data-jump': 1, 'data-member': j[2] }, f.plot);
          title(c, 'member ' + j[2] + ' copied member ' + j[3][4] + ' at step ' + j[3][0] + '; ' + p.name + ' is now ' + fmt(j[4]));
        });
      }
    });
    if (!data.params.length) H('p', { class: 'note' }, 'No hyperparameters.', grid);
  }

  // ---- the best member's inherited schedule --------------------------------------------
  function drawSchedule() {
    var grid = clear('chart-schedule'), tableBox = clear('schedule-table'), note = document.getElementById('schedule-note');
    var b = data.best;
    if (!b || !b.schedule.length) { note.textContent = 'No member has a score yet.'; return; }
    var trainers = [];
    b.schedule.forEach(function (s) { if (trainers.indexOf(s.member) < 0) trainers.push(s.member); });
    var total = 0;
    b.schedule.forEach(function (s) { total += s.to - s.from; });
    note.textContent = 'Member ' + b.member + ' is the best now (score ' + fmt(b.score) + ' at step ' + b.step + '). Following its copies back, its model ' +
      'started as member ' + b.root + '\u2019s fresh model and was trained by member' + (trainers.length > 1 ? 's ' : ' ') + trainers.join(', ') +
      ' in turn: ' + b.schedule.length + ' piece' + (b.schedule.length === 1 ? '' : 's') + ', ' + total + ' training steps for its ' + b.step +
      ' steps as a member (efficiency ' + fmt(b.efficiency) + '). The x axis counts the steps this model was trained.';
    var tcolor = new Map();
    trainers.forEach(function (m, i) { tcolor.set(m, data.members.length <= PALETTE.length ? memberColor(m) : PALETTE[i % PALETTE.length]); });
    var legend = H('div', { class: 'legend' }, null, grid);
    legend.style.gridColumn = '1 / -1';
    trainers.forEach(function (m) { legendItem(legend, 'swatch', tcolor.get(m), 'trained by member ' + m); });
    data.params.forEach(function (p, pi) {
      var cell = H('div', { class: 'chart-cell' }, null, grid);
      var values = b.schedule.map(function (s) { return s.h[pi]; });
      var f = frame(cell, { title: p.name + ' inherited by member ' + b.member, xlabel: 'training steps of the model (along its ancestry)', ylabel: p.name,
        x: [0, Math.max(total, 1)], y: yFor(p, values), height: 250, width: Math.max(420, Math.min(cell.clientWidth || 600, 900)),
        left: p.kind === 'categorical' ? 84 : 66 });
      f.svg.setAttribute('data-schedule-param', p.name);
      var at = 0, prev = null;
      b.schedule.forEach(function (s, k) {
        var v = s.h[pi], len = s.to - s.from;
        var x0 = r1(f.x(at)), x1 = r1(f.x(at + len));
        at += len;
        if (v === null) { prev = null; return; }
        var y = r1(f.y(v));
        var d = (prev !== null ? 'M' + x0 + ',' + prev + 'V' + y : 'M' + x0 + ',' + y) + 'H' + x1;
        title(S('path', { d: d, stroke: tcolor.get(s.member), 'stroke-width': 3, fill: 'none', 'stroke-linecap': 'round', 'data-schedule-piece': k }, f.plot),
          'piece ' + (k + 1) + ': member ' + s.member + '\u2019s steps ' + s.from + '\u2013' + s.to + ', ' + p.name + ' = ' + fmt(v));
        prev = y;
      });
    });
    var table = H('table', { class: 'schedule' }, null, tableBox);
    var hr = H('tr', {}, null, H('thead', {}, null, table));
    ['piece', 'model steps', 'trained by', 'that member\u2019s steps'].concat(data.params.map(function (p) { return p.name; }))
      .forEach(function (c) { H('th', {}, c, hr); });
    var body = H('tbody', {}, null, table), at = 0;
    b.schedule.forEach(function (s, k) {
      var tr = H('tr', {}, null, body);
      H('td', {}, String(k + 1), tr);
      H('td', {}, at + '\u2013' + (at + s.to - s.from), tr);
      at += s.to - s.from;
      H('td', {}, 'member ' + s.member, tr);
      H('td', {}, s.from + '\u2013' + s.to, tr);
      s.h.forEach(function (v) { H('td', {}, fmt(v), tr); });
    });
  }

  // ---- tables and summary (redrawn when live) -------------------------------------------
  function drawMembers() {
    var box = clear('members-box');
    var table = H('table', { class: 'members', id: 'members-table' }, null, box);
    var hr = H('tr', {}, null, H('thead', {}, null, table));
    var heads = ['member', 'step', 'trained steps', 'efficiency', 'score', 'status', 'lineage'];
    heads.concat(data.params.map(function (p) { return p.name; })).forEach(function (c, i) {
      var th = H('th', {}, c, hr);
      if (i === 2) th.title = 'the steps this member\u2019s model has really been trained, following its weight copies back';
      if (i === 3) th.title = 'trained steps / step: above 1 after copying a member that was ahead, below 1 after copying one behind';
    });
    var body = H('tbody', {}, null, table);
    data.members.forEach(function (m) {
      var tr = H('tr', { 'data-member': m.id, class: m.best ? 'best' : null }, null, body);
      H('td', {}, m.id + (m.best ? ' \u2605' : ''), tr);
      H('td', {}, String(m.step), tr);
      H('td', { 'data-trained': '' }, m.trained_steps === null ? '-' : String(m.trained_steps), tr);
      H('td', { 'data-efficiency': '' }, fmt(m.efficiency), tr);
      H('td', {}, fmt(m.score), tr);
      var status = m.failed ? 'failed: ' + m.error : m.done ? 'done' : 'training';
      H('td', { title: status, class: m.failed ? 'failed' : null }, status.length > 60 ? status.slice(0, 59) + '\u2026' : status, tr);
      H('td', {}, m.root === null ? '-' : 'member ' + m.root, tr);
      m.h.forEach(function (v) { H('td', {}, fmt(v), tr); });
      tr.addEventListener('click', function () { select(m.id); });
      tr.title = 'click: pick out member ' + m.id + ' in every chart';
    });
  }
  function drawSummary() {
    var s = document.getElementById('summary');
    var status = data.finished ? 'finished (target score reached)' : data.members_done === data.members.length && data.members.length ? 'finished' : 'in progress';
    s.textContent = data.members.length + ' members, ' + data.members_done + ' done' + (data.budget ? ' (budget ' + data.budget + ' steps each)' : '') +
      ', ' + data.events.length + ' events (' + data.copies + ' copies), ' + data.score_points + ' evals' +
      (data.median_efficiency !== null ? ', median efficiency ' + fmt(data.median_efficiency) + ' (trained steps / step)' : '') +
      '; ' + status + '. Generated ' + data.generated + '.';
  }

  function controls() {
    var box = clear('scores-controls');
    var label = H('label', {}, 'colour lines by ', box);
    var sel = H('select', { id: 'color-by' }, null, label);
    [['lineage', 'lineage'], ['member', 'member']].forEach(function (o) {
      var opt = H('option', { value: o[0] }, o[1], sel);
      if (o[0] === state.colorBy) opt.selected = true;
    });
    sel.addEventListener('change', function () { state.colorBy = sel.value; renderCharts(); });
    H('span', {}, ' (lineage: whose initial model a line\u2019s model descends from; grey lines died out) \u00b7 hover a line, or click a row of the final population, to pick a member out', box);
  }

  function renderCharts() {
    var t0 = performance.now();
    [drawScores, drawTree, drawHyper, drawSchedule].forEach(function (fn) {
      try { fn(); } catch (e) { reportError(fn.name + ': ' + (e && e.stack ? e.stack : e)); }
    });
    if (state.selected !== null) { var m = state.selected; state.selected = null; select(m); }
    document.body.setAttribute('data-render-ms', Math.round(performance.now() - t0));
  }
  function renderAll() {
    if (state.colorBy === null) {
      // By lineage when several survive; when one does, every line would share its colour.
      var surviving = data.lineages.filter(function (l) { return l.final > 0; }).length;
      state.colorBy = surviving >= 2 || data.members.length > PALETTE.length ? 'lineage' : 'member';
    }
    setupColors();
    setupHistory();
    drawSummary();
    controls();
    drawMembers();
    renderCharts();
    document.body.setAttribute('data-rendered', data.revision);
  }

  renderAll();

  var resizeTimer = null;
  window.addEventListener('resize', function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(renderCharts, 200);
  });

  // ---- live (dashboard) ---------------------------------------------------------------
  if (data.live) {
    var live = document.getElementById('live'), refreshes = 0;
    var tick = function () {
      var started = performance.now();
      fetch('data.json', { cache: 'no-store' }).then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.json();
      }).then(function (next) {
        refreshes++;
        live.setAttribute('data-refreshes', refreshes);
        live.classList.remove('stale');
        live.textContent = 'live: updated ' + new Date().toLocaleTimeString() + ' (every ' + (data.refresh_ms / 1000) + ' s)';
        if (next.revision !== data.revision) { data = next; renderAll(); }
        schedule(performance.now() - started);
      }).catch(function (e) {
        live.classList.add('stale');
        live.textContent = 'live: cannot reach the dashboard (' + e.message + '); retrying';
        schedule(0);
      });
    };
    var schedule = function (took) { setTimeout(tick, Math.max(data.refresh_ms || 2000, 3 * took)); };
    schedule(0);
  }
})();
