// A document's revision tree drawn as SVG: one row per leaf (the winner first), a column per
// generation; leaves marked winner, conflict or deleted. Built from `open_revs=all&revs=true`,
// whose leaves each carry their path to the root (`_revisions`).

const DX = 96;
const DY = 44;

/** The winner by CouchDB's rule: live before deleted, then the longer path, then the greater rev. */
export function winner(leaves) {
  const key = (l) => [l._deleted ? 0 : 1, l.pos, l.rev];
  return [...leaves].sort((a, b) => {
    const [x, y] = [key(a), key(b)];
    for (let i = 0; i < 3; i += 1) if (x[i] !== y[i]) return x[i] < y[i] ? 1 : -1;
    return 0;
  })[0];
}

/** The tree's nodes (rev → node) and its leaves, winner first. */
export function buildTree(docs) {
  const nodes = new Map();
  const leaves = [];
  for (const doc of docs) {
    const { start, ids } = doc._revisions ?? { start: Number(doc._rev.split('-')[0]), ids: [doc._rev.split('-')[1]] };
    const leaf = { rev: doc._rev, pos: start, _deleted: !!doc._deleted };
    leaves.push(leaf);
    for (let k = 0; k < ids.length; k += 1) {
      const rev = `${start - k}-${ids[k]}`;
      const parent = k + 1 < ids.length ? `${start - k - 1}-${ids[k + 1]}` : null;
      const node = nodes.get(rev) ?? { rev, pos: start - k, parent, leaf: false, deleted: false };
      if (k === 0) {
        node.leaf = true;
        node.deleted = !!doc._deleted;
      }
      nodes.set(rev, node);
    }
  }
  const win = winner(leaves);
  leaves.sort((a, b) => (a === win ? -1 : b === win ? 1 : b.pos - a.pos || (a.rev < b.rev ? 1 : -1)));
  return { nodes, leaves, winner: win?.rev };
}

/** The SVG element; `onPick(rev)` when a revision is clicked. */
export function drawTree(h, docs, onPick) {
  const { nodes, leaves, winner: win } = buildTree(docs);
  if (!nodes.size) return h('p', { class: 'muted' }, 'No revisions.');
  // Each node sits on the row of the first leaf (in leaf order) that descends from it.
  const lane = new Map();
  leaves.forEach((leaf, i) => {
    for (let rev = leaf.rev; rev && !lane.has(rev); rev = nodes.get(rev)?.parent) lane.set(rev, i);
  });
  const minPos = Math.min(...[...nodes.values()].map((n) => n.pos));
  const maxPos = Math.max(...[...nodes.values()].map((n) => n.pos));
  const x = (n) => 40 + (n.pos - minPos) * DX;
  const y = (n) => 26 + lane.get(n.rev) * DY;
  const width = 120 + (maxPos - minPos) * DX;
  const height = 20 + leaves.length * DY;
  const svg = h('svg:svg', { class: 'revtree', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img',
    'aria-label': `revision tree: ${leaves.length} leaves` });
  for (const n of nodes.values()) {
    const p = n.parent && nodes.get(n.parent);
    if (!p) continue;
    const [x1, y1, x2, y2] = [x(p), y(p), x(n), y(n)];
    const d = y1 === y2 ? `M${x1},${y1} L${x2},${y2}` : `M${x1},${y1} C${x1 + DX / 2},${y1} ${x2 - DX / 2},${y2} ${x2},${y2}`;
    svg.append(h('svg:path', { class: 'edge', d }));
  }
  for (const n of nodes.values()) {
    const kind = !n.leaf ? 'inner' : n.rev === win ? 'winner' : n.deleted ? 'deleted' : 'conflict';
    const g = h('svg:g', { class: `node ${n.leaf ? 'leaf' : ''} ${kind}`, 'data-rev': n.rev, tabindex: 0 },
      h('svg:title', {}, `${n.rev}${n.leaf ? ` (${kind}${n.deleted && kind === 'winner' ? ', deleted' : ''})` : ''}`),
      h('svg:circle', { cx: x(n), cy: y(n), r: n.leaf ? 9 : 6 }),
      h('svg:text', { x: x(n), y: y(n) + 22, 'text-anchor': 'middle' }, `${n.rev.split('-')[0]}-${n.rev.split('-')[1].slice(0, 5)}`));
    g.addEventListener('click', () => onPick(n.rev));
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter') onPick(n.rev); });
    svg.append(g);
  }
  return h('div', { class: 'tree-wrap' }, svg,
    h('p', { class: 'legend' },
      h('span', { class: 'dot winner' }), ' winner ',
      h('span', { class: 'dot conflict' }), ' conflict ',
      h('span', { class: 'dot deleted' }), ' deleted leaf ',
      h('span', { class: 'dot inner' }), ' earlier revision'));
}
