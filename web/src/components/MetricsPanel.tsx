import { useEffect, useId, useMemo, useRef, useState } from 'react';
import type uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './MetricsPanel.css';
import { api, unwrap } from '../api/client';
import { ApiError } from '../api/errors';
import {
  alignToGrid,
  AnswerError,
  CHARTS,
  chooseStep,
  describeChart,
  formatTick,
  nearlyFullQuotas,
  parseMatrix,
  QUOTA_QUERY,
  quotaLines,
  RANGES,
  rangeStart,
  TICK_STEPS,
  timeGrid,
  type ChartSpec,
  type QuotaLine,
  type Range,
  type Series,
} from '../lib/metrics';
import { useResource } from '../lib/useResource';
import { useDark } from '../lib/theme';
import { ErrorNotice, Loading } from './ui';

type Quantities = Record<string, string | number> | undefined;

/** A range query through Berth's enforcing endpoint, its answer checked and parsed. */
async function queryRange(name: string, query: string, start: number, end: number, step: number, signal: AbortSignal): Promise<Series[]> {
  const answer = await unwrap(
    api.GET('/api/v1/environments/{name}/metrics/query_range', {
      params: { path: { name }, query: { query, start: String(start), end: String(end), step: String(step) } },
      signal,
    }),
  );
  return parseMatrix(answer);
}

interface Loaded {
  /** The range asked for: data of another is not shown under this one's buttons. */
  range: Range['key'];
  start: number;
  end: number;
  step: number;
  usage: Series[][];
  hard: Series[];
}

async function load(name: string, range: Range, createdAt: string | undefined, signal: AbortSignal): Promise<Loaded> {
  const step = chooseStep(range.seconds);
  // Now, not rounded to the step: a rounded end would hide up to a step of
  // the freshest data (all of a young environment's at 7 d).
  const end = Math.floor(Date.now() / 1000);
  const start = rangeStart(end, range.seconds, step, createdAt);
  const [hard, ...usage] = await Promise.all([
    queryRange(name, QUOTA_QUERY, start, end, step, signal),
    ...CHARTS.map((chart) => queryRange(name, chart.query(step), start, end, step, signal)),
  ]);
  return { range: range.key, start, end, step, usage, hard: hard ?? [] };
}

/**
 * "Quota nearly full": every hard limit of the environment's quota status
 * used to 90 % or more, with its figures; nothing below that.
 */
export function QuotaBanner({ hard, used }: { hard: Quantities; used: Quantities }) {
  const full = nearlyFullQuotas(hard, used);
  if (full.length === 0) return null;
  return (
    <div className="notice warning quota-banner" role="status" data-testid="quota-banner">
      <p>
        <strong>Quota nearly full.</strong>{' '}
        {full.map((f) => `${f.resource}: ${f.used} of ${f.hard} used (${f.percent} %)`).join('; ')}.
      </p>
      <p className="small">New pods or objects over the quota are refused: remove what you no longer need, or ask an admin for more.</p>
    </div>
  );
}

/**
 * CPU, memory, pods and restarts of an environment over 1 h to 7 d, each
 * against its quota, from Prometheus through Berth's namespace-confined
 * query endpoint; `hard` is the quota status, drawn where Prometheus has no
 * history of it. Charts start no earlier than `createdAt` (RFC 3339).
 */
export function MetricsPanel({ name, createdAt, hard }: { name: string; createdAt?: string; hard: Quantities }) {
  const [range, setRange] = useState<Range>(RANGES[0] as Range);
  const step = chooseStep(range.seconds);
  // A new point every step, but the freshest one moves with every refresh:
  // at least every 15 s, at most every minute.
  const refreshMs = Math.min(60_000, Math.max(15_000, step * 1000));
  const metrics = useResource((signal) => load(name, range, createdAt, signal), `metrics-${name}-${range.key}`, refreshMs);
  const unavailable = metrics.error instanceof ApiError && metrics.error.code === 'unavailable' ? metrics.error : null;
  // The environment's status is polled every few seconds; the charts only
  // need redrawing when the quota itself changes.
  const hardKey = JSON.stringify(hard ?? {});
  const charts = useMemo(() => {
    const data = metrics.data;
    if (!data || data.range !== range.key) return null;
    const currentHard = JSON.parse(hardKey) as Record<string, string | number>;
    const xs = timeGrid(data.start, data.end, data.step);
    return CHARTS.map((spec, i) => {
      const usage = alignToGrid(data.usage[i]?.[0]?.values ?? [], xs, data.step);
      const quota = quotaLines(spec.quota, data.hard, currentHard, xs, data.step);
      return { spec, xs, usage, quota, summary: describeChart(spec.title, spec.unit, usage, quota) };
    });
  }, [metrics.data, range.key, hardKey]);

  return (
    <section className="card metrics" aria-labelledby="metrics-title">
      <div className="metrics-head">
        <h2 id="metrics-title">Metrics</h2>
        <div className="range-buttons" role="group" aria-label="Time range">
          {RANGES.map((r) => (
            <button
              key={r.key}
              type="button"
              className={r.key === range.key ? 'small' : 'small secondary'}
              aria-pressed={r.key === range.key}
              onClick={() => setRange(r)}
            >
              {r.label}
            </button>
          ))}
        </div>
      </div>
      {unavailable ? (
        <p className="metrics-empty" role="status">
          <strong>No charts:</strong> {unavailable.message}.
        </p>
      ) : metrics.error instanceof AnswerError ? (
        <p className="notice error" role="alert">
          No charts: {metrics.error.message}.
        </p>
      ) : metrics.error && !charts ? (
        <ErrorNotice error={metrics.error} retry={metrics.reload} />
      ) : !charts ? (
        <Loading what="metrics" />
      ) : (
        <div className="charts">
          {charts.map((c) => (
            <Chart key={c.spec.key} spec={c.spec} range={range} xs={c.xs} usage={c.usage} quota={c.quota} summary={c.summary} />
          ))}
        </div>
      )}
    </section>
  );
}

const HEIGHT = 180;

function Chart({
  spec,
  range,
  xs,
  usage,
  quota,
  summary,
}: {
  spec: ChartSpec;
  range: Range;
  xs: number[];
  usage: (number | null)[];
  quota: QuotaLine[];
  summary: string;
}) {
  const summaryId = useId();
  const empty = usage.every((v) => v === null);
  return (
    <figure className="chart" data-chart={spec.key}>
      <figcaption>
        <h3>{spec.title}</h3>
      </figcaption>
      {empty ? (
        <p className="metrics-empty">
          No data yet for the last {range.label}: {spec.key === 'cpu' || spec.key === 'memory'
            ? 'the kubelets report containers once pods run here and Prometheus has scraped them.'
            : 'Prometheus has not scraped Berth’s series for this environment in this range.'}
        </p>
      ) : (
        <>
          <Plot spec={spec} range={range} xs={xs} usage={usage} quota={quota} describedBy={summaryId} />
          <ul className="chart-legend" aria-hidden="true">
            <li>
              <span className="swatch usage" /> {spec.title}
            </li>
            {quota.map((line) => (
              <li key={line.label}>
                <span className="swatch quota" /> quota {line.label}
              </li>
            ))}
          </ul>
        </>
      )}
      <p className="chart-summary" id={summaryId}>
        {summary}
      </p>
    </figure>
  );
}

/** The chart's colours from the page's custom properties, so dark mode applies. */
function themeColors(element: Element) {
  const style = getComputedStyle(element);
  const read = (name: string, fallback: string) => style.getPropertyValue(name).trim() || fallback;
  return {
    text: read('--muted', '#5b6470'),
    grid: read('--border', '#d6dae0'),
    usage: read('--accent', '#2856c7'),
    quota: read('--danger', '#b42318'),
  };
}

function Plot({
  spec,
  range,
  xs,
  usage,
  quota,
  describedBy,
}: {
  spec: ChartSpec;
  range: Range;
  xs: number[];
  usage: (number | null)[];
  quota: QuotaLine[];
  describedBy: string;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const [failed, setFailed] = useState(false);
  // Canvases do not follow CSS: charts redraw when the theme changes.
  const dark = useDark();

  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    let plot: uPlot | undefined;
    let observer: ResizeObserver | undefined;
    let cancelled = false;
    // uPlot is loaded with the first chart, not with the page.
    import('uplot')
      .then(({ default: UPlot }) => {
        if (cancelled) return;
        const colors = themeColors(element);
        const axis = { stroke: colors.text, grid: { stroke: colors.grid, width: 1 }, ticks: { stroke: colors.grid, width: 1 } };
        // The legend is the page's own (it wraps on a phone) and the figures
        // are in the text below, so uPlot draws lines only.
        const options: uPlot.Options = {
          width: element.clientWidth,
          height: HEIGHT,
          legend: { show: false },
          cursor: { show: false },
          scales: { y: { range: (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] } },
          axes: [
            { ...axis, space: 70 },
            {
              ...axis,
              size: spec.unit === 'bytes' ? 72 : 52,
              values: (_u, splits) => splits.map((v) => formatTick(v, spec.unit)),
              incrs: TICK_STEPS[spec.unit],
            },
          ],
          series: [
            {},
            { label: spec.title, stroke: colors.usage, width: 2 },
            ...quota.map((line) => ({ label: `quota ${line.label}`, stroke: colors.quota, width: 1.5, dash: [6, 4] })),
          ],
        };
        plot = new UPlot(options, [xs, usage, ...quota.map((l) => l.values)] as uPlot.AlignedData, element);
        observer = new ResizeObserver(() => plot?.setSize({ width: element.clientWidth, height: HEIGHT }));
        observer.observe(element);
      })
      .catch(() => {
        if (!cancelled) setFailed(true);
      });
    return () => {
      cancelled = true;
      observer?.disconnect();
      plot?.destroy();
    };
  }, [spec, xs, usage, quota, dark]);

  if (failed) return <p className="metrics-empty">The chart could not be drawn; its figures are below.</p>;
  return <div ref={ref} className="plot" role="img" aria-label={`${spec.title} over the last ${range.label}`} aria-describedby={describedBy} />;
}
