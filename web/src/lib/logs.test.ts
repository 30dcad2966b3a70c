import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/errors';
import {
  appendLines,
  describeLogError,
  downloadName,
  downloadText,
  EMPTY_BUFFER,
  highlight,
  LineSplitter,
  logsUrl,
  reconnectDelayMs,
  ResumeDeduper,
  searchLines,
  sinceSecondsFor,
} from './logs';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('logsUrl', () => {
  it('fills the typed path and sends only the parameters given', () => {
    expect(logsUrl({ name: 'team-a', pod: 'web-1' }, { container: 'web', tailLines: 100, follow: true })).toBe(
      '/api/v1/environments/team-a/pods/web-1/logs?container=web&tailLines=100&follow=true',
    );
    expect(logsUrl({ name: 'a b', pod: 'p/q' }, {})).toBe('/api/v1/environments/a%20b/pods/p%2Fq/logs');
  });
});

describe('LineSplitter', () => {
  it('joins a line cut across chunks and keeps the unfinished rest', () => {
    const s = new LineSplitter();
    expect(s.push(bytes('one\ntw'))).toEqual(['one']);
    expect(s.push(bytes('o\r\nthr'))).toEqual(['two']);
    expect(s.push(bytes('ee'))).toEqual([]);
    expect(s.push(bytes('\n\n'))).toEqual(['three', '']);
    expect(s.flush()).toEqual([]);
  });

  it('joins a UTF-8 character cut across chunks', () => {
    const s = new LineSplitter();
    const all = bytes('größe ✓\n');
    expect(s.push(all.slice(0, 3))).toEqual([]);
    expect(s.push(all.slice(3, 8))).toEqual([]);
    expect(s.push(all.slice(8))).toEqual(['größe ✓']);
  });

  it('gives a last line without a line ending at the end of the stream', () => {
    const s = new LineSplitter();
    expect(s.push('a\nb')).toEqual(['a']);
    expect(s.flush()).toEqual(['b']);
    expect(s.flush()).toEqual([]);
  });
});

describe('appendLines', () => {
  it('keeps at most the cap, dropping the oldest and counting them, with ids that stay stable', () => {
    let b = appendLines(EMPTY_BUFFER, ['a', 'b', 'c'], 4);
    expect(b.lines.map((l) => l.text)).toEqual(['a', 'b', 'c']);
    expect(b.dropped).toBe(0);
    b = appendLines(b, ['d', 'e', 'f'], 4);
    expect(b.lines.map((l) => l.text)).toEqual(['c', 'd', 'e', 'f']);
    expect(b.lines.map((l) => l.id)).toEqual([2, 3, 4, 5]);
    expect(b.dropped).toBe(2);
    b = appendLines(b, ['g', 'h', 'i', 'j', 'k'], 4);
    expect(b.lines.map((l) => l.text)).toEqual(['h', 'i', 'j', 'k']);
    expect(b.dropped).toBe(7);
  });

  it('returns the same buffer for nothing new, and never changes the one given', () => {
    const b = appendLines(EMPTY_BUFFER, ['a'], 4);
    expect(appendLines(b, [], 4)).toBe(b);
    appendLines(b, ['b'], 4);
    expect(b.lines).toHaveLength(1);
  });
});

describe('searchLines and highlight', () => {
  const lines = appendLines(EMPTY_BUFFER, ['GET /health 200', 'error: disk full', 'Error again, ERROR twice', 'ok']).lines;

  it('finds the lines holding the text, ignoring case, and counts every occurrence', () => {
    const r = searchLines(lines, 'error');
    expect(r.lines.map((l) => l.text)).toEqual(['error: disk full', 'Error again, ERROR twice']);
    expect(r.matches).toBe(3);
    expect(searchLines(lines, 'nothing')).toEqual({ lines: [], matches: 0 });
  });

  it('shows every line for an empty search', () => {
    expect(searchLines(lines, '').lines).toBe(lines);
  });

  it('cuts a line into plain and highlighted pieces that join back to it', () => {
    const segments = highlight('Error again, ERROR twice', 'error');
    expect(segments).toEqual([
      { text: 'Error', match: true },
      { text: ' again, ', match: false },
      { text: 'ERROR', match: true },
      { text: ' twice', match: false },
    ]);
    expect(highlight('aaa', 'aa')).toEqual([
      { text: 'aa', match: true },
      { text: 'a', match: false },
    ]);
    expect(highlight('plain', '')).toEqual([{ text: 'plain', match: false }]);
    expect(highlight('', 'x')).toEqual([{ text: '', match: false }]);
  });
});

describe('downloads', () => {
  it('names the file after the pod and container and ends every line', () => {
    expect(downloadName('web-7d9f-abc', 'web')).toBe('web-7d9f-abc_web.log');
    expect(downloadText(appendLines(EMPTY_BUFFER, ['a', 'b']).lines)).toBe('a\nb\n');
    expect(downloadText([])).toBe('');
  });
});

describe('reconnecting', () => {
  it('backs off from 1 s to 15 s, or waits what the server asked', () => {
    expect([0, 1, 2, 3, 4, 9].map((a) => reconnectDelayMs(a))).toEqual([1000, 2000, 4000, 8000, 15000, 15000]);
    expect(reconnectDelayMs(3, 30)).toBe(30_000);
  });

  it('asks again for the time since the drop, with a second of margin, within the server range', () => {
    expect(sinceSecondsFor(10_000, 10_000)).toBe(1);
    expect(sinceSecondsFor(10_000, 14_500)).toBe(6);
    expect(sinceSecondsFor(0, 1e12)).toBe(2_592_000);
  });

  it('skips the lines a resumed stream sends again, in whichever chunks they come', () => {
    const d = new ResumeDeduper(['l1', 'l2', 'l3', 'l4']);
    expect(d.filter(['l3'])).toEqual([]);
    expect(d.filter(['l4', 'l5', 'l6'])).toEqual(['l5', 'l6']);
    // Once past the overlap, a line equal to an old one is new.
    expect(d.filter(['l3'])).toEqual(['l3']);
  });

  it('keeps everything when the resumed stream does not start with a kept line', () => {
    expect(new ResumeDeduper(['l1', 'l2']).filter(['l5', 'l2'])).toEqual(['l5', 'l2']);
    expect(new ResumeDeduper([]).filter(['l1'])).toEqual(['l1']);
    const d = new ResumeDeduper(['l1', 'l2', 'l3']);
    expect(d.filter(['l2', 'lx', 'l3'])).toEqual(['lx', 'l3']);
  });
});

describe('describeLogError', () => {
  const ctx = { environment: 'team-a', pod: 'web-1', container: 'web' };

  it('tells a gone pod from lost access, and names the cluster when it is down', () => {
    const notFound = new ApiError(404, 'not_found', 'not found');
    expect(describeLogError(notFound, { ...ctx, environmentVisible: true })).toBe('Pod “web-1” no longer exists in “team-a”. Pick another pod.');
    expect(describeLogError(notFound, { ...ctx, environmentVisible: false })).toMatch(/not a member of “team-a”/);
    expect(describeLogError(new ApiError(403, 'forbidden', 'forbidden'), ctx)).toMatch(/not allowed to read logs in “team-a”/);
    expect(describeLogError(new ApiError(503, 'unavailable', 'the cluster is not reachable'), ctx)).toMatch(/cluster is unavailable.*web-1/);
    expect(describeLogError(new TypeError('Failed to fetch'), ctx)).toMatch(/could not be reached/);
  });

  it('gives the reason the server named for a bad parameter', () => {
    const bad = new ApiError(400, 'validation_failed', 'invalid', [{ field: 'container', message: 'container "web" in pod "web-1" is waiting to start' }]);
    expect(describeLogError(bad, ctx)).toBe('Berth cannot read the logs of web-1/web: container "web" in pod "web-1" is waiting to start.');
  });
});
