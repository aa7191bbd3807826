/**
 * Packing the plan's units (independent components) into at most `maxTracks` tracks, and each
 * track's reason (tracks.ts builds the units; docs/tracks.md has the algorithm).
 */
import { kindOf, kindText, shapeText, type ShapeKind, type UnitShape } from './unit-shape.js';

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

export interface Unit {
  /** Issue indexes of the component (open issues). */
  members: number[];
  actionable: number[];
  priority: number;
  minId: string;
  affinity: string;
  shape: UnitShape;
}

export interface Bin {
  units: Unit[];
  size: number;
  affinity: string;
}

/**
 * Packs independent components into at most `maxTracks` tracks: components of one kind
 * (affinity) start in one bin; a bin larger than half again the even share is split (its units
 * dealt in priority order, so each half gets urgent work); while there are too many bins the
 * two smallest merge; while there are too few, the largest bin with several units splits.
 */
export function packUnits(units: Unit[], maxTracks: number): Bin[] {
  const total = units.reduce((s, u) => s + u.actionable.length, 0);
  const cap = Math.ceil((total / maxTracks) * 1.5);
  const byKind = new Map<string, Unit[]>();
  for (const u of units) {
    const list = byKind.get(u.affinity);
    if (list) list.push(u);
    else byKind.set(u.affinity, [u]);
  }
  const make = (us: Unit[], affinity: string): Bin => ({
    units: us,
    size: us.reduce((s, u) => s + u.actionable.length, 0),
    affinity,
  });
  const split = (bin: Bin): Bin[] => {
    const halves: Unit[][] = [[], []];
    const sizes = [0, 0];
    for (const u of bin.units) {
      const k = sizes[0]! <= sizes[1]! ? 0 : 1;
      halves[k]!.push(u);
      sizes[k]! += u.actionable.length;
    }
    return halves.filter((h) => h.length).map((h) => make(h, bin.affinity));
  };
  let bins: Bin[] = [];
  for (const [kind, us] of byKind) {
    const todo = [make(us, kind)];
    while (todo.length) {
      const b = todo.pop()!;
      if (b.size > cap && b.units.length > 1) todo.push(...split(b));
      else bins.push(b);
    }
  }
  const bySize = (a: Bin, b: Bin) => a.size - b.size || a.affinity.localeCompare(b.affinity);
  while (bins.length > maxTracks) {
    bins.sort(bySize);
    const [x, y] = bins.splice(0, 2) as [Bin, Bin];
    const merged = make([...x.units, ...y.units], x.affinity === y.affinity ? x.affinity : 'mixed');
    merged.units.sort(unitOrder);
    bins.push(merged);
  }
  for (;;) {
    if (bins.length >= maxTracks) break;
    const big = bins.filter((b) => b.units.length > 1).sort((a, b) => b.size - a.size)[0];
    if (!big) break;
    bins = [...bins.filter((b) => b !== big), ...split(big)];
  }
  return bins;
}

export const unitOrder = (a: Unit, b: Unit) =>
  a.priority - b.priority || b.actionable.length - a.actionable.length || cmp(a.minId, b.minId);

export const KIND_ORDER: ShapeKind[] = ['epic', 'chain', 'files', 'family', 'single'];

/**
 * A track's reason: what kind of work it is, then its units aggregated by shape, so a track of
 * many similar units reads "8 dependency chains (up to 9 waiting); 2 independent items".
 */
export function binReason(bin: Bin): string {
  if (bin.units.length === 1) return shapeText(bin.units[0]!.shape);
  const byKind = new Map<ShapeKind, UnitShape[]>();
  for (const u of bin.units) {
    const k = kindOf(u.shape);
    byKind.set(k, [...(byKind.get(k) ?? []), u.shape]);
  }
  const parts = KIND_ORDER.filter((k) => byKind.has(k)).map((k) => kindText(k, byKind.get(k)!));
  const kind = bin.affinity === 'mixed' ? 'mixed kinds' : bin.affinity;
  return `${kind}: ${parts.join('; ')}`;
}
