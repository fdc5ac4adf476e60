// layerscope HTML report: draws the embedded Report (see docs/report.md).
// Every string from the report goes into the page through textContent or
// setAttribute, never as markup. Tiles are SVG rects whose geometry is in
// their attributes, so a test can measure what was drawn.
'use strict';

(function () {
  const scriptStart = performance.now();
  const errorBox = document.getElementById('errors');
  function fail(msg) {
    errorBox.appendChild(document.createTextNode(msg + '\n'));
    document.body.setAttribute('data-errors', String(errorBox.childNodes.length));
  }
  window.addEventListener('error', function (e) {
    fail('error: ' + e.message + ' (' + (e.lineno || 0) + ':' + (e.colno || 0) + ')');
  });
  window.addEventListener('unhandledrejection', function (e) {
    fail('unhandled rejection: ' + String(e.reason));
  });
  document.addEventListener('securitypolicyviolation', function (e) {
    fail('blocked by the content security policy: ' + e.violatedDirective + ' ' + e.blockedURI);
  });

  const SVGNS = document.getElementById('svg-template').namespaceURI;
  const R = JSON.parse(document.getElementById('report-data').textContent);
  const images = Array.isArray(R.images) ? R.images : [];

  // Tiles smaller than this (px²) are merged into one tile per directory.
  const MIN_AREA = 36;
  // A directory smaller than this is drawn as one tile, not opened.
  const OPEN_AREA = 900;
  const LABEL_W = 6.4; // approximate width of a label character

  // ---- formatting ---------------------------------------------------------

  function size(b) {
    const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
    let v = Math.abs(b), u = 0;
    while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
    const s = u === 0 ? String(v) + ' B' : v.toFixed(2) + ' ' + units[u];
    return b < 0 ? '-' + s : s;
  }
  function delta(d) { return d > 0 ? '+' + size(d) : size(d); }
  function pct(x) { return (x * 100).toFixed(1) + '%'; }
  function cut(s, n) {
    s = String(s).replace(/[\n\t]/g, ' ');
    return s.length <= n ? s : s.slice(0, Math.max(0, n - 1)) + '\u2026';
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function svgEl(tag, attrs) {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function numCell(tag, bytes, text) {
    const c = el(tag, 'num', text === undefined ? size(bytes) : text);
    c.setAttribute('data-bytes', String(bytes));
    c.title = Number(bytes).toLocaleString('en') + ' bytes';
    return c;
  }
  function row(cells) {
    const tr = el('tr');
    cells.forEach(function (c) { tr.appendChild(typeof c === 'object' ? c : el('td', '', c)); });
    return tr;
  }
  function table(head, rows, numCols) {
    const t = el('table');
    const h = el('tr');
    head.forEach(function (x, i) { h.appendChild(el('th', numCols && numCols.indexOf(i) >= 0 ? 'num' : '', x)); });
    const thead = el('thead'); thead.appendChild(h); t.appendChild(thead);
    const tb = el('tbody');
    rows.forEach(function (r) { tb.appendChild(r); });
    t.appendChild(tb);
    return t;
  }

  // ---- theme --------------------------------------------------------------

  const root = document.documentElement;
  const hashTheme = /theme=(dark|light)/.exec(location.hash);
  let theme = hashTheme ? hashTheme[1]
    : (window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  function applyTheme() {
    root.setAttribute('data-theme', theme);
    document.getElementById('theme-toggle').textContent = theme === 'dark' ? 'light theme' : 'dark theme';
  }
  document.getElementById('theme-toggle').addEventListener('click', function () {
    theme = theme === 'dark' ? 'light' : 'dark';
    applyTheme();
  });
  applyTheme();

  // ---- the tree -----------------------------------------------------------

  // Children as compressed rows: kids of r are list[start[r] .. start[r+1]),
  // largest first (the report's order).
  function Tree(t, layers) {
    const n = t.parent.length;
    this.t = t;
    this.n = n;
    this.layers = layers;
    const count = new Int32Array(n + 1);
    for (let i = 1; i < n; i++) count[t.parent[i] + 1]++;
    for (let i = 0; i < n; i++) count[i + 1] += count[i];
    const fill = count.slice(0, n);
    const list = new Int32Array(Math.max(0, n - 1));
    for (let i = 1; i < n; i++) list[fill[t.parent[i]]++] = i;
    this.start = count;
    this.list = list;
  }
  Tree.prototype.name = function (r) { return r === 0 ? '/' : this.t.names[this.t.name[r]]; };
  Tree.prototype.path = function (r) {
    const parts = [];
    while (r > 0) { parts.push(this.t.names[this.t.name[r]]); r = this.t.parent[r]; }
    return '/' + parts.reverse().join('/');
  };
  Tree.prototype.kids = function (r) { return this.list.subarray(this.start[r], this.start[r + 1]); };
  Tree.prototype.lookup = function (path) {
    let r = 0;
    const parts = String(path).split('/').filter(function (p) { return p !== '' && p !== '.'; });
    for (const p of parts) {
      const k = this.kids(r);
      let found = -1;
      for (let i = 0; i < k.length; i++) if (this.t.names[this.t.name[k[i]]] === p) { found = k[i]; break; }
      if (found < 0) return -1;
      r = found;
    }
    return r;
  };
  // Rows marked, plus their descendants (bit 1) and ancestors (bit 2).
  Tree.prototype.mask = function (rows) {
    const m = new Uint8Array(this.n), p = this.t.parent;
    rows.forEach(function (r) { if (r >= 0) m[r] = 1; });
    for (let i = 1; i < this.n; i++) if (m[p[i]] & 1) m[i] |= 1;
    for (let i = this.n - 1; i > 0; i--) if (m[i]) m[p[i]] |= 2;
    return m;
  };
  Tree.prototype.layerMask = function (layer) {
    const rows = [];
    for (let i = 1; i < this.n; i++) if (this.t.layer[i] === layer && !this.t.dir[i] && this.t.bytes[i] > 0) rows.push(i);
    const m = new Uint8Array(this.n), p = this.t.parent;
    rows.forEach(function (r) { m[r] = 1; });
    for (let i = this.n - 1; i > 0; i--) if (m[i]) m[p[i]] |= 2;
    return m;
  };

  // ---- squarified treemap (Bruls, Huizing, van Wijk) ---------------------

  // areas: sorted largest first, summing to w*h. Returns [x, y, w, h] each.
  function squarify(areas, x, y, w, h) {
    const out = [];
    let i = 0;
    while (i < areas.length) {
      const side = Math.min(w, h);
      let sum = areas[i], j = i + 1;
      let worst = worstRatio(areas[i], areas[i], sum, side);
      while (j < areas.length) {
        const s2 = sum + areas[j];
        const w2 = worstRatio(areas[i], areas[j], s2, side);
        if (w2 > worst) break;
        worst = w2; sum = s2; j++;
      }
      const last = j >= areas.length;
      if (w >= h) {
        const thick = last ? w : sum / h;
        let yy = y;
        for (let k = i; k < j; k++) {
          const hh = k === j - 1 ? y + h - yy : areas[k] / thick;
          out.push([x, yy, thick, hh]); yy += hh;
        }
        x += thick; w -= thick;
      } else {
        const thick = last ? h : sum / w;
        let xx = x;
        for (let k = i; k < j; k++) {
          const ww = k === j - 1 ? x + w - xx : areas[k] / thick;
          out.push([xx, y, ww, thick]); xx += ww;
        }
        y += thick; h -= thick;
      }
      i = j;
    }
    return out;
  }
  function worstRatio(max, min, sum, side) {
    const s2 = side * side, sum2 = sum * sum;
    if (min <= 0 || sum2 === 0) return Infinity;
    return Math.max(s2 * max / sum2, sum2 / (s2 * min));
  }

  // ---- one image's panel --------------------------------------------------

  const panels = [];
  const tooltip = document.getElementById('tooltip');

  function Panel(img, idx, host) {
    this.img = img;
    this.idx = idx;
    this.tree = img.tree && img.tree.parent && img.tree.parent.length ? new Tree(img.tree, img.layers || []) : null;
    this.view = 0;
    this.mask = null;
    this.activeButton = null;
    this.host = host;
    this.crumbs = el('nav', 'crumbs');
    this.crumbs.setAttribute('aria-label', 'Path of the directory shown');
    host.appendChild(this.crumbs);
    this.svg = svgEl('svg', { class: 'treemap', role: 'img' });
    this.svg.setAttribute('aria-label', 'Treemap of the final file system of ' + img.name);
    this.svg.setAttribute('data-image', String(idx));
    host.appendChild(this.svg);
    const self = this;
    this.svg.addEventListener('mousemove', function (e) { self.hover(e); });
    this.svg.addEventListener('mouseleave', function () { tooltip.hidden = true; });
    this.svg.addEventListener('click', function (e) { self.click(e); });
  }

  Panel.prototype.draw = function (W, H, scale) {
    const svg = this.svg, tr = this.tree;
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    this.drawCrumbs();
    if (!tr) {
      svg.setAttribute('width', '0'); svg.setAttribute('height', '0');
      if (!this.noTree) {
        this.noTree = el('p', 'muted', 'This report carries no file tree, so there is no treemap.');
        this.host.insertBefore(this.noTree, svg);
      }
      return;
    }
    const t = tr.t;
    const s = this.view === 0 ? Math.sqrt(scale) : 1;
    const w = Math.max(1, Math.round(W * s * 100) / 100), h = Math.max(1, Math.round(H * s * 100) / 100);
    svg.setAttribute('width', String(w));
    svg.setAttribute('height', String(h));
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + h);
    if (t.bytes[this.view] === 0) {
      const e = svgEl('text', { x: 8, y: 20 }); e.textContent = 'no bytes here'; svg.appendChild(e);
      return;
    }
    const frag = { tiles: document.createDocumentFragment(), frames: document.createDocumentFragment(), labels: document.createDocumentFragment() };
    this.layout(this.view, 0, 0, w, h, 0, -100, frag);
    svg.appendChild(frag.tiles); svg.appendChild(frag.frames); svg.appendChild(frag.labels);
    this.applyMask();
  };

  Panel.prototype.layout = function (node, x, y, w, h, depth, parentY, frag) {
    const tr = this.tree, t = tr.t;
    const kids = tr.kids(node);
    let sum = 0, k = 0;
    while (k < kids.length && t.bytes[kids[k]] > 0) { sum += t.bytes[kids[k]]; k++; }
    if (sum === 0) { this.leaf(node, -1, x, y, w, h, depth, parentY, frag); return; }
    const scale = (w * h) / sum;
    // Merge the smallest children into one tile when they are too small to see.
    let keep = k, aggBytes = 0;
    while (keep > 1 && t.bytes[kids[keep - 1]] * scale < MIN_AREA) { keep--; aggBytes += t.bytes[kids[keep]]; }
    if (k - keep === 1) { keep++; aggBytes = 0; }
    const items = [];
    for (let i = 0; i < keep; i++) items.push({ r: kids[i], b: t.bytes[kids[i]], agg: 0 });
    if (k > keep) items.push({ r: node, b: aggBytes, agg: k - keep });
    items.sort(function (a, b) { return b.b - a.b; });
    const rects = squarify(items.map(function (it) { return it.b * scale; }), x, y, w, h);
    for (let i = 0; i < items.length; i++) {
      const it = items[i], q = rects[i];
      if (it.agg) {
        this.leaf(node, it.agg, q[0], q[1], q[2], q[3], depth + 1, y, frag);
      } else if (t.dir[it.r] && tr.kids(it.r).length && q[2] * q[3] >= OPEN_AREA && q[2] > 12 && q[3] > 12) {
        this.layout(it.r, q[0], q[1], q[2], q[3], depth + 1, y, frag);
        this.frame(it.r, q, depth + 1, y, frag);
      } else {
        this.leaf(it.r, -1, q[0], q[1], q[2], q[3], depth + 1, y, frag);
      }
      if (depth === 0) {
        frag.frames.appendChild(svgEl('rect', {
          class: 'top', x: f2(q[0]), y: f2(q[1]), width: f2(q[2]), height: f2(q[3]),
          'data-n': it.r, 'data-bytes': it.b, 'data-agg': it.agg
        }));
      }
    }
  };
  function f2(v) { return String(Math.round(v * 100) / 100); }

  Panel.prototype.catOf = function (r) {
    const t = this.tree.t;
    const c = t.categories[t.category[r]];
    return c === undefined ? 'runtime' : c;
  };

  // A drawn tile: a path, or (agg > 0) the `agg` smallest children of `node`.
  Panel.prototype.leaf = function (node, agg, x, y, w, h, depth, parentY, frag) {
    const t = this.tree.t;
    const bytes = agg > 0 ? null : t.bytes[node];
    const rect = svgEl('rect', {
      class: 'tile ' + (agg > 0 ? 'agg' : 'cat-' + this.catOf(node)),
      x: f2(x), y: f2(y), width: f2(w), height: f2(h), 'data-n': node, 'data-depth': depth
    });
    if (agg > 0) rect.setAttribute('data-agg', String(agg));
    frag.tiles.appendChild(rect);
    if (w < 40 || h < 14 || (h < 30 && y < parentY + 16)) return;
    const name = agg > 0 ? agg + ' smaller' : this.tree.name(node);
    let text = name + ' ' + (bytes === null ? '' : size(bytes));
    if (agg <= 0 && w > (text.length + 14) * LABEL_W) text += ' \u00b7 ' + this.catOf(node);
    const e = svgEl('text', { x: f2(x + 3), y: f2(y + h - 4) });
    e.textContent = cut(text, Math.floor((w - 6) / LABEL_W));
    frag.labels.appendChild(e);
  };

  Panel.prototype.frame = function (r, q, depth, parentY, frag) {
    frag.frames.appendChild(svgEl('rect', { class: 'frame', x: f2(q[0]), y: f2(q[1]), width: f2(q[2]), height: f2(q[3]) }));
    if (q[2] < 60 || q[3] < 30 || (depth > 1 && q[1] < parentY + 16)) return;
    const e = svgEl('text', { x: f2(q[0] + 3), y: f2(q[1] + 13), class: depth === 1 ? 'big' : '' });
    e.textContent = cut(this.tree.name(r) + '/ ' + size(this.tree.t.bytes[r]), Math.floor((q[2] - 6) / (LABEL_W + 0.8)));
    frag.labels.appendChild(e);
  };

  Panel.prototype.drawCrumbs = function () {
    const c = this.crumbs, tr = this.tree, self = this;
    while (c.firstChild) c.removeChild(c.firstChild);
    if (!tr) return;
    const chain = [];
    for (let r = this.view; ; r = tr.t.parent[r]) { chain.push(r); if (r === 0) break; }
    chain.reverse().forEach(function (r, i) {
      if (i > 1) c.appendChild(el('span', 'sep', '/'));
      const b = el('button', '', r === 0 ? '/ (' + self.img.name + ')' : tr.name(r));
      b.type = 'button';
      b.title = tr.path(r) + ' \u2014 ' + size(tr.t.bytes[r]);
      if (r === self.view) b.setAttribute('aria-current', 'location');
      b.addEventListener('click', function () { self.zoom(r); });
      c.appendChild(b);
    });
  };

  Panel.prototype.zoom = function (r) {
    this.view = r;
    redraw();
  };

  Panel.prototype.click = function (e) {
    const n = e.target.getAttribute && e.target.getAttribute('data-n');
    if (n === null || n === undefined || !this.tree) return;
    let r = Number(n);
    const p = this.tree.t.parent;
    // The clicked path's ancestor right below the directory shown.
    while (r > 0 && p[r] !== this.view) r = p[r];
    if (r > 0 && this.tree.t.dir[r] && this.tree.kids(r).length) this.zoom(r);
  };

  Panel.prototype.hover = function (e) {
    const tgt = e.target;
    const n = tgt.getAttribute && tgt.getAttribute('data-n');
    if (n === null || n === undefined || !this.tree) { tooltip.hidden = true; return; }
    const r = Number(n), tr = this.tree, t = tr.t;
    const agg = Number(tgt.getAttribute('data-agg') || 0);
    while (tooltip.firstChild) tooltip.removeChild(tooltip.firstChild);
    if (agg > 0) {
      const b = this.aggBytes(r, agg);
      tooltip.appendChild(el('div', 'tpath', agg + ' smaller items in ' + tr.path(r)));
      tooltip.appendChild(el('div', '', size(b) + ' together, each too small to draw; click to open the directory'));
    } else {
      tooltip.appendChild(el('div', 'tpath', tr.path(r) + (t.dir[r] ? '/' : '')));
      const items = t.dir[r] ? ', ' + tr.kids(r).length + ' entries' : '';
      tooltip.appendChild(el('div', '', size(t.bytes[r]) + ' (' + t.bytes[r].toLocaleString('en') + ' bytes)' + items));
      const L = t.layer[r];
      const layer = L > 0 ? tr.layers[L - 1] : null;
      tooltip.appendChild(el('div', '', L > 0
        ? 'layer ' + L + ': ' + cut(layer ? layer.instruction : '', 140)
        : 'layer: none (a directory implied by the paths below it)'));
      const pk = t.package[r];
      tooltip.appendChild(el('div', '', 'package: ' + (pk > 0 ? t.packages[pk - 1] : 'none known')));
      tooltip.appendChild(el('div', '', 'category: ' + this.catOf(r)));
    }
    tooltip.hidden = false;
    const x = Math.min(e.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    const y = e.clientY + 16 + tooltip.offsetHeight > window.innerHeight ? e.clientY - tooltip.offsetHeight - 8 : e.clientY + 16;
    tooltip.style.left = Math.max(0, x) + 'px';
    tooltip.style.top = Math.max(0, y) + 'px';
  };

  Panel.prototype.aggBytes = function (node, agg) {
    const t = this.tree.t, kids = this.tree.kids(node);
    let k = 0;
    while (k < kids.length && t.bytes[kids[k]] > 0) k++;
    let b = 0;
    for (let i = k - agg; i < k; i++) b += t.bytes[kids[i]];
    return b;
  };

  Panel.prototype.highlight = function (mask, button) {
    if (this.activeButton) this.activeButton.setAttribute('aria-pressed', 'false');
    if (button && this.activeButton === button) { mask = null; button = null; }
    this.mask = mask;
    this.activeButton = button;
    if (button) button.setAttribute('aria-pressed', 'true');
    this.applyMask();
  };

  Panel.prototype.applyMask = function () {
    const m = this.mask;
    this.svg.classList.toggle('dim', !!m);
    const tiles = this.svg.querySelectorAll('rect.tile');
    for (let i = 0; i < tiles.length; i++) {
      tiles[i].classList.toggle('hl', !!m && m[Number(tiles[i].getAttribute('data-n'))] !== 0);
    }
  };

  // ---- the sections around the treemap ------------------------------------

  function residue(img) {
    if (img.headline && typeof img.headline.residue_bytes === 'number') return img.headline.residue_bytes;
    let b = 0;
    (img.categories || []).forEach(function (c) { if (c.build_residue) b += c.bytes; });
    return b;
  }

  function headline(img) {
    const d = el('div', 'headline');
    const t = img.totals || {};
    function item(label, bytes, extra) {
      const s = el('span', '', label + ' ');
      const b = el('b', '', size(bytes));
      b.setAttribute('data-bytes', String(bytes));
      s.appendChild(b);
      if (extra) s.appendChild(document.createTextNode(' ' + extra));
      d.appendChild(s);
    }
    item('size', t.size_bytes, 'in ' + t.layers + ' layers, ' + Number(t.final_entries).toLocaleString('en') + ' entries');
    item('build residue', residue(img), '(toolchains, caches, sources)');
    if (img.projected_runtime_bytes !== null && img.projected_runtime_bytes !== undefined) {
      item('projected without residue and waste', img.projected_runtime_bytes);
    }
    item('wasted', t.wasted_bytes, 'efficiency ' + pct(t.efficiency));
    d.appendChild(el('span', 'muted', (img.base_os || '') + ' \u00b7 ' + (img.os || '') + '/' + (img.architecture || '')));
    return d;
  }

  function layersSection(panel, host) {
    const img = panel.img, layers = img.layers || [];
    host.appendChild(el('h3', '', 'Layers'));
    const bar = el('div', 'layers');
    bar.setAttribute('role', 'group');
    bar.setAttribute('aria-label', 'Layers by size; choose one to highlight its files');
    const total = layers.reduce(function (a, l) { return a + l.size_bytes; }, 0) || 1;
    const baseN = img.base ? img.base.layers : 0;
    const rows = [];
    layers.forEach(function (l, i) {
      const b = el('button', i < baseN ? 'base' : '', String(l.index));
      b.type = 'button';
      b.style.flexGrow = String(Math.max(l.size_bytes / total, 0.002));
      b.title = 'layer ' + l.index + ' (' + size(l.size_bytes) + '): ' + cut(l.instruction, 300);
      b.setAttribute('aria-pressed', 'false');
      b.setAttribute('data-layer', String(l.index));
      const pick = function () { if (panel.tree) panel.highlight(panel.tree.layerMask(l.index), b); };
      b.addEventListener('click', pick);
      bar.appendChild(b);
      const pickRow = el('button', '', String(l.index) + (i < baseN ? ' base' : ''));
      pickRow.type = 'button';
      pickRow.addEventListener('click', function () { b.click(); });
      rows.push(row([el('td', '', ''), numCell('td', l.size_bytes), numCell('td', l.hidden_later_bytes), el('td', 'instr', cut(l.instruction, 400))]));
      rows[rows.length - 1].firstChild.appendChild(pickRow);
    });
    host.appendChild(bar);
    host.appendChild(table(['#', 'size', 'hidden later', 'instruction'], rows, [1, 2]));
  }

  function findingsSection(panel, host) {
    const fs = panel.img.findings || [];
    host.appendChild(el('h3', '', 'Findings (' + fs.length + ')'));
    if (!fs.length) { host.appendChild(el('p', 'muted', 'none')); return; }
    const ul = el('ul', 'findings');
    fs.forEach(function (f) {
      const li = el('li');
      const b = el('button', '', f.title + ' \u2014 ' + size(f.bytes));
      b.type = 'button';
      b.setAttribute('aria-pressed', 'false');
      b.setAttribute('data-finding', f.id);
      const paths = (f.top_paths || []).map(function (p) { return p.path; });
      b.title = paths.length ? 'highlight: ' + cut(paths.join(', '), 300) : 'no paths to highlight';
      b.addEventListener('click', function () {
        if (!panel.tree) return;
        panel.highlight(panel.tree.mask(paths.map(function (p) { return panel.tree.lookup(p); })), b);
      });
      li.appendChild(b);
      if (f.fix) li.appendChild(el('p', 'fix', f.fix));
      ul.appendChild(li);
    });
    host.appendChild(ul);
  }

  function wasteSection(img, host) {
    const t = img.totals || {};
    host.appendChild(el('h3', '', 'Waste'));
    host.appendChild(table(['kind', 'bytes'], [
      row(['hidden: overwritten by a later layer', numCell('td', t.overwritten_bytes)]),
      row(['hidden: metadata-only copies (chmod, chown)', numCell('td', t.metadata_only_bytes)]),
      row(['hidden: the same content copied again (COPY, ADD)', numCell('td', t.recopied_bytes || 0)]),
      row(['hidden: deleted (whiteouts)', numCell('td', t.deleted_bytes)]),
      row(['hidden: under opaque directories', numCell('td', t.opaque_bytes)]),
      row(['hidden, all', numCell('td', t.hidden_bytes)]),
      row(['duplicate copies of visible files', numCell('td', t.duplicate_bytes)]),
      row(['wasted (hidden + duplicates)', numCell('td', t.wasted_bytes)])
    ], [1]));
    const top = img.top_wasted || [];
    if (top.length) {
      host.appendChild(table(['wasted path', 'bytes', 'why', 'layers'], top.map(function (w) {
        return row([el('td', 'path', w.path), numCell('td', w.bytes), w.kind, (w.layers || []).join(', ')]);
      }), [1]));
    }
  }

  function categoryNames() {
    for (const img of images) if (img.categories) return img.categories.map(function (c) { return c.category; });
    return [];
  }

  function legend() {
    const ul = document.getElementById('legend');
    const names = categoryNames();
    names.forEach(function (c) {
      const li = el('li');
      li.appendChild(el('span', 'swatch cat-' + c));
      li.appendChild(document.createTextNode(c));
      ul.appendChild(li);
    });
    const li = el('li');
    li.appendChild(el('span', 'swatch swagg'));
    li.appendChild(document.createTextNode('smaller items, merged'));
    ul.appendChild(li);
  }

  // Category deltas from the images themselves, so any number of images
  // works; comparison objects (one, or a list) add their summary lines.
  function comparison() {
    if (images.length < 2) return;
    const box = document.getElementById('compare');
    box.hidden = false;
    const body = document.getElementById('compare-body');
    const comps = R.comparison === null || R.comparison === undefined ? []
      : Array.isArray(R.comparison) ? R.comparison : [R.comparison];
    comps.forEach(function (c) {
      if (!c || c.a === undefined) return;
      const p = el('p');
      p.appendChild(document.createTextNode(c.a + ' \u2192 ' + c.b + ': ' + size(c.a_size_bytes) + ' \u2192 ' + size(c.b_size_bytes)));
      if (typeof c.reduction_percent === 'number') p.appendChild(document.createTextNode(' (' + c.reduction_percent.toFixed(2) + '% smaller)'));
      if (typeof c.shared_layers === 'number') p.appendChild(document.createTextNode('; ' + c.shared_layers + ' shared layers'));
      if (c.files) p.appendChild(document.createTextNode('; files only in ' + c.a + ': ' + c.files.only_in_a + ', only in ' + c.b + ': ' + c.files.only_in_b + ', changed: ' + c.files.changed));
      body.appendChild(p);
    });
    const first = images[0];
    const head = ['category'];
    const nums = [];
    images.forEach(function (img, i) { head.push(img.name); nums.push(head.length - 1); if (i > 0) { head.push('\u0394 vs ' + first.name); nums.push(head.length - 1); } });
    const names = categoryNames();
    const bytesOf = function (img, c) {
      const x = (img.categories || []).find(function (k) { return k.category === c; });
      return x ? x.bytes : 0;
    };
    const rows = names.map(function (c) {
      const cells = [el('td', '', c)];
      images.forEach(function (img, i) {
        cells.push(numCell('td', bytesOf(img, c)));
        if (i > 0) {
          const d = bytesOf(img, c) - bytesOf(first, c);
          const cell = numCell('td', d, delta(d));
          cell.classList.add(d > 0 ? 'pos' : d < 0 ? 'neg' : 'zero');
          cell.setAttribute('data-category', c);
          cell.setAttribute('data-image', String(i));
          cells.push(cell);
        }
      });
      return row(cells);
    });
    const total = [el('td', '', 'final file system')];
    images.forEach(function (img, i) {
      const b = img.totals ? img.totals.final_bytes : 0;
      total.push(numCell('td', b));
      if (i > 0) {
        const d = b - (first.totals ? first.totals.final_bytes : 0);
        total.push(numCell('td', d, delta(d)));
      }
    });
    rows.push(row(total));
    body.appendChild(table(head, rows, nums));
    body.appendChild(el('p', 'muted', 'The treemaps below share one scale: each image\u2019s area is proportional to its bytes.'));
  }

  // ---- putting it together ------------------------------------------------

  function redraw() {
    if (!panels.length) return;
    let W = Infinity;
    panels.forEach(function (p) { W = Math.min(W, p.host.clientWidth || 800); });
    W = Math.max(240, Math.floor(W) - 2);
    const H = Math.max(200, Math.round(W * (panels.length > 1 ? 0.75 : 0.55)));
    let max = 0;
    panels.forEach(function (p) { if (p.tree) max = Math.max(max, p.tree.t.bytes[0]); });
    panels.forEach(function (p) {
      const b = p.tree ? p.tree.t.bytes[0] : 0;
      p.draw(W, H, max > 0 ? b / max : 1);
    });
  }

  function build() {
    const t0 = performance.now();
    document.title = 'layerscope: ' + images.map(function (i) { return i.name; }).join(' vs ');
    document.getElementById('title').textContent = images.length > 1
      ? 'Comparing ' + images.map(function (i) { return i.name; }).join(', ')
      : (images.length ? images[0].name : 'no image');
    const hl = document.getElementById('headline');
    images.forEach(function (img) {
      if (images.length > 1) hl.appendChild(el('div', 'muted', img.name));
      hl.appendChild(headline(img));
    });
    legend();
    comparison();
    const box = document.getElementById('images');
    images.forEach(function (img, i) {
      const sec = el('section', 'image');
      sec.appendChild(el('h2', '', img.name));
      box.appendChild(sec);
      const mapHost = el('div', 'map');
      sec.appendChild(mapHost);
      const p = new Panel(img, i, mapHost);
      panels.push(p);
      const clear = el('button', '', 'clear highlight');
      clear.type = 'button';
      clear.addEventListener('click', function () { p.highlight(null, null); });
      sec.appendChild(clear);
      layersSection(p, sec);
      findingsSection(p, sec);
      wasteSection(img, sec);
    });
    redraw();
    let pending = 0;
    window.addEventListener('resize', function () {
      clearTimeout(pending);
      pending = setTimeout(redraw, 150);
    });
    document.addEventListener('keydown', function (e) {
      if (e.key !== 'Escape' && e.key !== 'Backspace') return;
      panels.forEach(function (p) { if (p.view !== 0) p.view = p.tree.t.parent[p.view]; });
      redraw();
    });
    // Style and layout of what was drawn, so the times below include them.
    void document.body.offsetHeight;
    const done = performance.now();
    // Milliseconds since navigation: when this script started (the page and
    // its data read and parsed), when the treemap was drawn and laid out,
    // and (when the browser paints) the first frame after that.
    document.body.setAttribute('data-script-start-ms', String(Math.round(scriptStart)));
    document.body.setAttribute('data-render-ms', String(Math.round(done)));
    document.body.setAttribute('data-build-ms', String(Math.round(done - t0)));
    document.body.setAttribute('data-status', 'drawn');
    requestAnimationFrame(function () {
      setTimeout(function () {
        document.body.setAttribute('data-painted-ms', String(Math.round(performance.now())));
      }, 0);
    });
  }

  try {
    build();
  } catch (e) {
    fail('error: ' + (e && e.stack ? e.stack : String(e)));
    document.body.setAttribute('data-status', 'failed');
  }
})();
