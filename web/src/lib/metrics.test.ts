import { describe, expect, it } from 'vitest';
import {
  alignToGrid,
  AnswerError,
  CHARTS,
  chooseStep,
  describeChart,
  formatTick,
  formatValue,
  MAX_POINTS,
  nearlyFullQuotas,
  parseMatrix,
  QUOTA_QUERY,
  quotaLines,
  RANGES,
  rangeStart,
  rateWindow,
  TICK_STEPS,
  timeGrid,
} from './metrics';

describe('chooseStep', () => {
  it('gives each offered range about 240 points in whole seconds', () => {
    expect(RANGES.map((r) => chooseStep(r.seconds))).toEqual([15, 90, 360, 2520]);
  });
  it('never asks for more points than Prometheus allows, nor a step under a second', () => {
    for (const seconds of [1, 59, 3600, 31 * 86400, 400 * 86400]) {
      for (const points of [1, 240, 100_000]) {
        const step = chooseStep(seconds, points);
        expect(step).toBeGreaterThanOrEqual(1);
        expect(Number.isInteger(step)).toBe(true);
        expect(Math.floor(seconds / step) + 1).toBeLessThanOrEqual(MAX_POINTS);
      }
    }
  });
  it('starts at the range, or at the environment’s creation when that is later', () => {
    const end = 1_800_000_000;
    const iso = (s: number) => new Date(s * 1000).toISOString();
    expect(rangeStart(end, 3600, 15, iso(end - 86400))).toBe(end - 3600);
    expect(rangeStart(end, 3600, 15, iso(end - 600 + 7))).toBe(end - 600);
    expect(rangeStart(end, 3600, 15, iso(end - 600 - 7))).toBe(end - 615);
    expect(rangeStart(end, 3600, 15, iso(end - 3))).toBe(end - 15);
    expect(rangeStart(end, 3600, 15, iso(end + 30))).toBe(end - 15);
    expect(rangeStart(end, 3600, 15, undefined)).toBe(end - 3600);
    expect(rangeStart(end, 3600, 15, 'not a date')).toBe(end - 3600);
  });
  it('widens the rate window with the step, never under two minutes', () => {
    expect(rateWindow(15)).toBe(120);
    expect(rateWindow(2520)).toBe(5040);
  });
});

describe('queries', () => {
  it('count containers once and leave the namespace to Berth', () => {
    expect(CHARTS.find((c) => c.key === 'cpu')?.query(15)).toBe(
      'sum(max by (pod, container) (rate(container_cpu_usage_seconds_total{container!="",container!="POD"}[120s])))',
    );
    for (const chart of CHARTS) expect(chart.query(60)).not.toContain('namespace');
  });
  it('ask for the hard limit of every resource a chart is drawn against', () => {
    expect(QUOTA_QUERY).toBe(
      'max by (resource) (berth_environment_quota_hard{resource=~"requests.cpu|limits.cpu|requests.memory|limits.memory|pods"})',
    );
  });
});

const answer = (result: unknown, resultType = 'matrix') => ({ status: 'success', data: { resultType, result } });

describe('parseMatrix', () => {
  it('reads labels and turns Prometheus’ string values into numbers', () => {
    expect(
      parseMatrix(
        answer([
          { metric: { resource: 'pods' }, values: [[100, '3'], [115, 'NaN']] },
          { metric: {}, values: [[100.5, '0.25']] },
        ]),
      ),
    ).toEqual([
      { metric: { resource: 'pods' }, values: [[100, 3], [115, NaN]] },
      { metric: {}, values: [[100.5, 0.25]] },
    ]);
  });
  it('refuses what is not a range answer, saying what it found', () => {
    expect(() => parseMatrix({ status: 'error', error: 'bad' })).toThrow(AnswerError);
    expect(() => parseMatrix(answer([], 'vector'))).toThrow('answered a vector where a matrix was expected');
    expect(() => parseMatrix(answer([{ metric: {} }]))).toThrow('without metric or values');
    expect(() => parseMatrix(answer([{ metric: {}, values: [[1]] }]))).toThrow('malformed point');
  });
});

describe('series shaping', () => {
  const xs = timeGrid(100, 160, 15);
  it('evaluates at start, start + step, … up to end', () => {
    expect(xs).toEqual([100, 115, 130, 145, 160]);
  });
  it('puts each point at its grid time and leaves gaps as null', () => {
    expect(alignToGrid([[115, 1], [145.0004, 2], [160, NaN], [400, 9]], xs, 15)).toEqual([null, 1, null, 2, null]);
  });
  it('draws Berth’s quota series where Prometheus has it, else the current quota, merging equal lines', () => {
    const hard = [
      { metric: { resource: 'requests.cpu' }, values: [[100, 2], [115, 2], [130, 4], [145, 4], [160, 4]] as [number, number][] },
      { metric: { resource: 'limits.cpu' }, values: [[100, 2], [115, 2], [130, 4], [145, 4], [160, 4]] as [number, number][] },
    ];
    expect(quotaLines(['requests.cpu', 'limits.cpu'], hard, undefined, xs, 15)).toEqual([
      { label: 'requests.cpu = limits.cpu', values: [2, 2, 4, 4, 4] },
    ]);
    expect(quotaLines(['requests.memory', 'limits.memory'], [], { 'requests.memory': '1Gi', 'limits.memory': '2Gi' }, xs, 15)).toEqual([
      { label: 'requests.memory', values: [2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30, 2 ** 30] },
      { label: 'limits.memory', values: [2 ** 31, 2 ** 31, 2 ** 31, 2 ** 31, 2 ** 31] },
    ]);
    expect(quotaLines(['pods'], [], { 'requests.cpu': '2' }, xs, 15)).toEqual([]);
    expect(quotaLines([], hard, { pods: 3 }, xs, 15)).toEqual([]);
  });
});

describe('text alternative', () => {
  it('says the latest value against each quota line', () => {
    const quota = [{ label: 'pods', values: [10, 10, null] }];
    expect(describeChart('Pods', 'count', [1, 3, null], quota)).toBe('Pods: latest 3, quota pods 10 (30 %).');
    expect(describeChart('Container restarts', 'count', [0, 0], [])).toBe('Container restarts: latest 0.');
    const cpu = [{ label: 'requests.cpu', values: [2] }];
    expect(describeChart('CPU', 'cores', [0.00676], cpu)).toBe('CPU: latest 6.76m cores, quota requests.cpu 2 cores (< 1 %).');
    expect(describeChart('CPU', 'cores', [0], cpu)).toBe('CPU: latest 0 cores, quota requests.cpu 2 cores (0 %).');
    expect(describeChart('CPU', 'cores', [null, null], quota)).toBe('CPU: no data in this range.');
  });
  it('writes values in the unit people read', () => {
    expect(formatValue(0.25, 'cores')).toBe('250m cores');
    expect(formatValue(0.0123456, 'cores')).toBe('12.3m cores');
    expect(formatValue(1, 'cores')).toBe('1 core');
    expect(formatValue(2, 'cores')).toBe('2 cores');
    expect(formatValue(0, 'cores')).toBe('0 cores');
    expect(formatValue(64 * 2 ** 20, 'bytes')).toBe('64 MiB');
    expect(formatValue(1.5 * 2 ** 30, 'bytes')).toBe('1.5 GiB');
    expect(formatValue(512, 'bytes')).toBe('512 B');
    expect(formatValue(7, 'count')).toBe('7');
    expect(formatValue(0.3333, 'count')).toBe('0.333');
    expect(formatTick(0.25, 'cores')).toBe('250m');
    expect(formatTick(1.5, 'cores')).toBe('1.5');
    expect(formatTick(0, 'cores')).toBe('0');
    expect(formatTick(2 ** 30, 'bytes')).toBe('1 GiB');
  });
});

describe('nearlyFullQuotas', () => {
  it('names each hard limit used to 90 % or more, fullest first, with its figures', () => {
    expect(
      nearlyFullQuotas(
        { pods: '10', 'requests.cpu': '2', 'limits.memory': '1Gi', 'requests.storage': '10Gi' },
        { pods: '9', 'requests.cpu': '2', 'limits.memory': '900Mi', 'requests.storage': '1Gi' },
      ),
    ).toEqual([
      { resource: 'requests.cpu', used: '2', hard: '2', percent: 100 },
      { resource: 'pods', used: '9', hard: '10', percent: 90 },
    ]);
  });
  it('stays quiet below 90 %, for zero limits and for what it cannot read', () => {
    expect(nearlyFullQuotas({ pods: 10, 'requests.cpu': '1' }, { pods: 8, 'requests.cpu': '899m' })).toEqual([]);
    expect(nearlyFullQuotas({ 'services.loadbalancers': '0' }, { 'services.loadbalancers': '0' })).toEqual([]);
    expect(nearlyFullQuotas({ 'requests.cpu': 'lots' }, { 'requests.cpu': '5' })).toEqual([]);
    expect(nearlyFullQuotas(undefined, undefined)).toEqual([]);
  });
  it('counts a missing used figure as nothing used', () => {
    expect(nearlyFullQuotas({ pods: 1 }, {})).toEqual([]);
  });
});

describe('axis ticks', () => {
  it('step in whole counts, binary sizes and 1-2-5 fractions of cores', () => {
    expect(TICK_STEPS.count.every((s) => Number.isInteger(s) && s >= 1)).toBe(true);
    expect(TICK_STEPS.bytes).toContain(512 * 2 ** 20);
    expect(TICK_STEPS.bytes).toContain(2 ** 30);
    expect(TICK_STEPS.cores.slice(0, 3)).toEqual([0.001, 0.002, 0.005]);
    for (const steps of Object.values(TICK_STEPS)) expect([...steps].sort((a, b) => a - b)).toEqual(steps);
  });
});
