/** Units offered next to quantity inputs; the value sent is number + suffix. */
export const CPU_UNITS = [
  { suffix: '', label: 'cores' },
  { suffix: 'm', label: 'millicores' },
] as const;

export const BYTE_UNITS = [
  { suffix: 'Mi', label: 'MiB' },
  { suffix: 'Gi', label: 'GiB' },
  { suffix: 'Ti', label: 'TiB' },
] as const;

export type QuantityKind = 'cpu' | 'bytes';

export interface QuantityValue {
  amount: string;
  unit: string;
}

export function unitsFor(kind: QuantityKind): readonly { suffix: string; label: string }[] {
  return kind === 'cpu' ? CPU_UNITS : BYTE_UNITS;
}

export function defaultUnit(kind: QuantityKind): string {
  return kind === 'cpu' ? '' : 'Gi';
}

/**
 * Splits a Kubernetes quantity into an amount and one of the offered units;
 * a suffix the picker does not offer stays in the amount, so nothing is lost.
 */
export function splitQuantity(quantity: string | number | undefined, kind: QuantityKind): QuantityValue {
  const text = quantity === undefined ? '' : String(quantity).trim();
  const match = /^([0-9]*\.?[0-9]*)([A-Za-z]*)$/.exec(text);
  const units = unitsFor(kind).map((u) => u.suffix);
  if (match && match[1] !== '' && units.includes(match[2] ?? '')) {
    return { amount: match[1] ?? '', unit: match[2] ?? '' };
  }
  return { amount: text, unit: text === '' ? defaultUnit(kind) : '' };
}

/** The quantity to send, or undefined when the amount is empty (left to the template). */
export function joinQuantity(value: QuantityValue): string | undefined {
  const amount = value.amount.trim();
  if (amount === '') return undefined;
  return /^[0-9.]+$/.test(amount) ? `${amount}${value.unit}` : amount;
}

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50 };
const DECIMAL: Record<string, number> = { m: 1e-3, '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15 };

/** A quantity as a plain number (cores, bytes or a count), or null when unreadable. */
export function parseQuantity(quantity: string | number | undefined | null): number | null {
  if (quantity === undefined || quantity === null) return null;
  if (typeof quantity === 'number') return quantity;
  const match = /^\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*$/.exec(quantity);
  if (!match) return null;
  const amount = Number(match[1]);
  const suffix = match[2] ?? '';
  const factor = BINARY[suffix] ?? DECIMAL[suffix];
  return factor === undefined ? null : amount * factor;
}

/** Used over hard as a whole percentage, clamped to 0..100. */
export function usagePercent(used: string | number | undefined, hard: string | number | undefined): number {
  const u = parseQuantity(used ?? 0);
  const h = parseQuantity(hard);
  if (u === null || h === null || h <= 0) return 0;
  return Math.min(100, Math.max(0, Math.round((u / h) * 100)));
}
