/**
 * The pure parts of the environment page's metrics charts: which PromQL each
 * chart asks, the step of a range, Prometheus' answers shaped for uPlot, the
 * quota lines, the text alternatives and the "quota nearly full" rule.
 */
import { parseQuantity } from './quantity';

/** A time range the charts offer, in seconds. */
export interface Range {
  key: '1h' | '6h' | '24h' | '7d';
  label: string;
  seconds: number;
}

export const RANGES: readonly Range[] = [
  { key: '1h', label: '1 h', seconds: 3600 },
  { key: '6h', label: '6 h', seconds: 6 * 3600 },
  { key: '24h', label: '24 h', seconds: 24 * 3600 },
  { key: '7d', label: '7 d', seconds: 7 * 24 * 3600 },
];

/** Prometheus (and Berth's endpoint) refuse a range query of more points than this. */
export const MAX_POINTS = 11_000;
/** Points per chart: about one per two CSS pixels of a wide chart, cheap to draw. */
export const TARGET_POINTS = 240;

/**
 * The step, in whole seconds, for a range: about `TARGET_POINTS` points, never
 * below one second and never more than `MAX_POINTS` points (end and start included).
 */
export function chooseStep(rangeSeconds: number, points: number = TARGET_POINTS): number {
  const wanted = Math.max(1, Math.ceil(rangeSeconds / Math.max(1, points)));
  const floor = Math.ceil(rangeSeconds / (MAX_POINTS - 1));
  return Math.max(wanted, floor, 1);
}

/**
 * Where a chart starts, in Unix seconds, a whole number of steps before `end`
 * (so that `end`, the freshest point, is on the grid): `rangeSeconds` before
 * it, or just before the environment's creation when that is later (there is
 * nothing earlier to draw), but at least one step.
 */
export function rangeStart(end: number, rangeSeconds: number, step: number, createdAt: string | undefined): number {
  const steps = Math.max(1, Math.floor(rangeSeconds / step));
  const created = createdAt ? Date.parse(createdAt) / 1000 : NaN;
  const lived = Number.isFinite(created) ? Math.max(1, Math.ceil((end - created) / step)) : steps;
  return end - step * Math.min(steps, lived);
}

/**
 * The window of `rate()`: at least two steps, so that neighbouring points
 * overlap, and at least two minutes, so that a kubelet scraped every 30 s still
 * has the two samples a rate needs.
 */
export function rateWindow(step: number): number {
  return Math.max(2 * step, 120);
}

export type Unit = 'cores' | 'bytes' | 'count';
export type ChartKey = 'cpu' | 'memory' | 'pods' | 'restarts';

/** One chart: its query and the quota resources it is drawn against. */
export interface ChartSpec {
  key: ChartKey;
  title: string;
  unit: Unit;
  /** PromQL over the environment's namespace (Berth adds the namespace matcher). */
  query: (step: number) => string;
  /** ResourceQuota resources whose hard limit bounds this chart. */
  quota: readonly string[];
}

// cAdvisor writes a series per pod cgroup (container="") and per pause
// container (container="POD") beside the containers' own; /metrics/resource
// writes the containers' again under another job. The max by (pod, container)
// counts each container once whichever of them Prometheus scrapes.
const CONTAINERS = 'container!="",container!="POD"';

export const CHARTS: readonly ChartSpec[] = [
  {
    key: 'cpu',
    title: 'CPU',
    unit: 'cores',
    query: (step) =>
      `sum(max by (pod, container) (rate(container_cpu_usage_seconds_total{${CONTAINERS}}[${rateWindow(step)}s])))`,
    quota: ['requests.cpu', 'limits.cpu'],
  },
  {
    key: 'memory',
    title: 'Memory',
    unit: 'bytes',
    query: () => `sum(max by (pod, container) (container_memory_working_set_bytes{${CONTAINERS}}))`,
    quota: ['requests.memory', 'limits.memory'],
  },
  {
    // Berth's own series, on every cluster (kube-state-metrics need not be
    // there); the max merges the copies of several Berth replicas. Pods that
    // have finished no longer count against the quota.
    key: 'pods',
    title: 'Pods',
    unit: 'count',
    query: () => 'sum(max by (phase) (berth_environment_pods{phase!~"Succeeded|Failed"}))',
    quota: ['pods'],
  },
  {
    key: 'restarts',
    title: 'Container restarts',
    unit: 'count',
    query: () => 'max(berth_environment_container_restarts)',
    quota: [],
  },
];

/** Every resource a chart is drawn against, per resource over time (Berth's series, merged over replicas). */
export const QUOTA_QUERY = `max by (resource) (berth_environment_quota_hard{resource=~"${CHARTS.flatMap((c) => c.quota).join('|')}"})`;

/** One series of a range answer: its labels and its [Unix seconds, value] points. */
export interface Series {
  metric: Record<string, string>;
  values: [number, number][];
}

/** Raised when an answer is not a Prometheus range answer: says what was found instead. */
export class AnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnswerError';
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The series of a Prometheus range answer (`{"status":"success","data":{"resultType":"matrix","result":[...]}}`);
 * Prometheus writes values as strings, "NaN" and "+Inf" included, which become numbers here.
 */
export function parseMatrix(answer: unknown): Series[] {
  if (!isRecord(answer) || answer.status !== 'success' || !isRecord(answer.data)) {
    throw new AnswerError('Prometheus did not answer with a success');
  }
  const { resultType, result } = answer.data;
  if (resultType !== 'matrix' || !Array.isArray(result)) {
    throw new AnswerError(`Prometheus answered a ${String(resultType)} where a matrix was expected`);
  }
  return result.map((item): Series => {
    if (!isRecord(item) || !isRecord(item.metric) || !Array.isArray(item.values)) {
      throw new AnswerError('Prometheus answered a series without metric or values');
    }
    const metric: Record<string, string> = {};
    for (const [k, v] of Object.entries(item.metric)) metric[k] = String(v);
    const values = item.values.map((point): [number, number] => {
      if (!Array.isArray(point) || point.length !== 2) throw new AnswerError('Prometheus answered a malformed point');
      return [Number(point[0]), Number(point[1])];
    });
    return { metric, values };
  });
}

/** The x values of a chart: start, start + step, ... up to end, as Prometheus evaluates them. */
export function timeGrid(start: number, end: number, step: number): number[] {
  const xs: number[] = [];
  for (let t = start; t <= end; t += step) xs.push(t);
  return xs;
}

/**
 * The points of a series on the grid: a value where Prometheus has one, null
 * where it has none (uPlot draws a gap), non-finite values as gaps too.
 */
export function alignToGrid(values: readonly [number, number][], xs: readonly number[], step: number): (number | null)[] {
  const ys: (number | null)[] = xs.map(() => null);
  const start = xs[0];
  if (start === undefined) return ys;
  for (const [t, v] of values) {
    const i = Math.round((t - start) / step);
    if (i >= 0 && i < ys.length && Number.isFinite(v)) ys[i] = v;
  }
  return ys;
}

/** A quota line: the resources it stands for and its value at each grid point. */
export interface QuotaLine {
  label: string;
  values: (number | null)[];
}

/**
 * The quota lines of a chart. Each resource's hard limit over time comes from
 * Berth's series where Prometheus has it, else from the environment's current
 * quota status as a flat line; resources whose lines are the same (Berth sets
 * requests and limits alike) share one line labelled with both.
 */
export function quotaLines(
  resources: readonly string[],
  hardSeries: readonly Series[],
  currentHard: Record<string, string | number> | undefined,
  xs: readonly number[],
  step: number,
): QuotaLine[] {
  const lines: QuotaLine[] = [];
  for (const resource of resources) {
    const series = hardSeries.find((s) => s.metric.resource === resource);
    let values: (number | null)[] | null = null;
    if (series && series.values.length > 0) {
      values = alignToGrid(series.values, xs, step);
    } else {
      const hard = parseQuantity(currentHard?.[resource]);
      if (hard !== null) values = xs.map(() => hard);
    }
    if (!values || values.every((v) => v === null)) continue;
    const same = lines.find((l) => l.values.length === values.length && l.values.every((v, i) => v === values[i]));
    if (same) same.label = `${same.label} = ${resource}`;
    else lines.push({ label: resource, values });
  }
  return lines;
}

/** The last non-null value of a series, or null when it has none. */
export function latest(values: readonly (number | null)[]): number | null {
  for (let i = values.length - 1; i >= 0; i--) {
    const v = values[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}

const BYTE_STEPS: [number, string][] = [
  [2 ** 40, 'TiB'],
  [2 ** 30, 'GiB'],
  [2 ** 20, 'MiB'],
  [2 ** 10, 'KiB'],
];

/** Up to three significant digits, without trailing zeros. */
function compact(n: number): string {
  return String(Number(n.toPrecision(3)));
}

/** A value in its unit, for axes and text: "0.25 cores", "1.5 GiB", "7". */
export function formatValue(value: number, unit: Unit): string {
  if (unit === 'count') return Number.isInteger(value) ? String(value) : compact(value);
  if (unit === 'cores') {
    if (value !== 0 && Math.abs(value) < 1) return `${compact(value * 1000)}m cores`;
    return `${compact(value)} ${value === 1 ? 'core' : 'cores'}`;
  }
  for (const [size, name] of BYTE_STEPS) {
    if (Math.abs(value) >= size) return `${compact(value / size)} ${name}`;
  }
  return `${compact(value)} B`;
}

const DECIMAL_STEPS = [1, 2, 5].flatMap((m) => [1e-3, 1e-2, 1e-1, 1, 10, 100, 1e3].map((p) => m * p)).sort((a, b) => a - b);
const BINARY_STEPS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512].flatMap((m) => [1, 2 ** 10, 2 ** 20, 2 ** 30, 2 ** 40].map((p) => m * p)).sort((a, b) => a - b);

/** The distances between axis ticks a unit allows: whole counts, powers of two for bytes (so ticks read 512 MiB, 1 GiB), 1-2-5 for cores. */
export const TICK_STEPS: Record<Unit, number[]> = {
  cores: DECIMAL_STEPS,
  bytes: BINARY_STEPS,
  count: DECIMAL_STEPS.filter((s) => s >= 1),
};

/** A value on an axis, short: millicores or cores without the word, bytes and counts as in text. */
export function formatTick(value: number, unit: Unit): string {
  if (unit !== 'cores') return formatValue(value, unit);
  return value !== 0 && Math.abs(value) < 1 ? `${compact(value * 1000)}m` : compact(value);
}

/**
 * The text alternative of a chart: its latest value and, where there is one,
 * the quota beside it with the share used.
 */
export function describeChart(title: string, unit: Unit, usage: readonly (number | null)[], quota: readonly QuotaLine[]): string {
  const now = latest(usage);
  if (now === null) return `${title}: no data in this range.`;
  const parts = [`${title}: latest ${formatValue(now, unit)}`];
  for (const line of quota) {
    const hard = latest(line.values);
    if (hard === null) continue;
    const percent = hard > 0 ? (now / hard) * 100 : null;
    // A sliver of the quota reads "< 1 %", not "0 %": something is used.
    const share = percent === null ? '' : percent > 0 && percent < 0.5 ? ' (< 1 %)' : ` (${Math.round(percent)} %)`;
    parts.push(`quota ${line.label} ${formatValue(hard, unit)}${share}`);
  }
  return `${parts.join(', ')}.`;
}

/** A hard limit used to at least `NEARLY_FULL` of itself. */
export interface FullQuota {
  resource: string;
  used: string;
  hard: string;
  percent: number;
}

/** The share of a hard limit at which the page warns. */
export const NEARLY_FULL = 0.9;

/**
 * The hard limits used to 90 % or more, fullest first. Limits of zero (Berth
 * sets `services.loadbalancers` and `services.nodeports` to 0 to forbid them)
 * and unreadable quantities are never "full".
 */
export function nearlyFullQuotas(
  hard: Record<string, string | number> | undefined,
  used: Record<string, string | number> | undefined,
): FullQuota[] {
  const full: FullQuota[] = [];
  for (const [resource, hardQuantity] of Object.entries(hard ?? {})) {
    const h = parseQuantity(hardQuantity);
    const u = parseQuantity(used?.[resource] ?? 0);
    if (h === null || u === null || h <= 0) continue;
    const share = u / h;
    // The tolerance keeps 9 of 10 (0.8999… in binary) on the full side.
    if (share >= NEARLY_FULL - 1e-9) {
      full.push({ resource, used: String(used?.[resource] ?? 0), hard: String(hardQuantity), percent: Math.floor(share * 100 + 1e-9) });
    }
  }
  return full.sort((a, b) => b.percent - a.percent || a.resource.localeCompare(b.resource));
}
