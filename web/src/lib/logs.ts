/**
 * The log viewer's pure parts: the endpoint's URL from the OpenAPI path,
 * splitting a byte stream into lines across chunk boundaries, keeping at most
 * a cap of lines, and searching them.
 */
import { ApiError } from '../api/errors';
import type { operations, paths } from '../api/schema';

/** The endpoint, spelled as the OpenAPI document has it (a typo fails tsc). */
export const LOGS_PATH = '/api/v1/environments/{name}/pods/{pod}/logs' satisfies keyof paths;

/** The endpoint's query parameters, as the OpenAPI document types them. */
export type LogQuery = NonNullable<operations['environment_logs_get']['parameters']['query']>;
type LogPath = operations['environment_logs_get']['parameters']['path'];

/**
 * The most lines the viewer keeps: beyond it the oldest are dropped (and the
 * viewer says how many), so a long follow cannot grow the page without bound.
 */
export const MAX_KEPT_LINES = 20_000;

/** The URL of a pod's logs: the typed path with its parameters filled in and the query appended. */
export function logsUrl(path: LogPath, query: LogQuery): string {
  const url = LOGS_PATH.replace('{name}', encodeURIComponent(path.name)).replace('{pod}', encodeURIComponent(path.pod));
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(query) as [keyof LogQuery, LogQuery[keyof LogQuery]][]) {
    if (value !== undefined && value !== '') search.set(key, String(value));
  }
  const qs = search.toString();
  return qs ? `${url}?${qs}` : url;
}

/**
 * Splits text that arrives in chunks into whole lines. A chunk may end in the
 * middle of a line (or of a UTF-8 character): that part is kept until the rest
 * arrives. Accepts `\n` and `\r\n` endings.
 */
export class LineSplitter {
  private readonly decoder = new TextDecoder();
  private partial = '';

  /** The whole lines completed by this chunk, without their line endings. */
  push(chunk: Uint8Array | string): string[] {
    const text = this.partial + (typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true }));
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    return parts.map(stripCr);
  }

  /** At the end of the stream: the last line if it had no line ending. */
  flush(): string[] {
    const rest = this.partial + this.decoder.decode();
    this.partial = '';
    return rest === '' ? [] : [stripCr(rest)];
  }
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

/** One kept line: `id` counts every line received, so it stays a stable key after older lines are dropped. */
export interface LogLine {
  id: number;
  text: string;
}

/** The kept lines and how many older ones were dropped to respect the cap. */
export interface LogBuffer {
  lines: LogLine[];
  nextId: number;
  dropped: number;
}

export const EMPTY_BUFFER: LogBuffer = { lines: [], nextId: 0, dropped: 0 };

/** Appends lines, dropping the oldest beyond `cap`; returns a new buffer (the old one is unchanged). */
export function appendLines(buffer: LogBuffer, texts: readonly string[], cap: number = MAX_KEPT_LINES): LogBuffer {
  if (texts.length === 0) return buffer;
  let nextId = buffer.nextId;
  const added = texts.map((text) => ({ id: nextId++, text }));
  const all = buffer.lines.length === 0 ? added : buffer.lines.concat(added);
  const over = Math.max(0, all.length - cap);
  return { lines: over > 0 ? all.slice(over) : all, nextId, dropped: buffer.dropped + over };
}

/** What a search finds: the lines that match, and how many matches they hold in all. */
export interface SearchResult {
  lines: LogLine[];
  matches: number;
}

/**
 * The lines containing `query`, ignoring case; every line when the query is
 * empty. `matches` counts each occurrence (a line may hold several).
 */
export function searchLines(lines: readonly LogLine[], query: string): SearchResult {
  if (query === '') return { lines: lines as LogLine[], matches: 0 };
  const needle = query.toLowerCase();
  const found: LogLine[] = [];
  let matches = 0;
  for (const line of lines) {
    const n = countOccurrences(line.text.toLowerCase(), needle);
    if (n > 0) {
      found.push(line);
      matches += n;
    }
  }
  return { lines: found, matches };
}

function countOccurrences(haystack: string, needle: string): number {
  let count = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + needle.length)) count++;
  return count;
}

/** A piece of a line for display: `match` pieces are shown highlighted. */
export interface Segment {
  text: string;
  match: boolean;
}

/** Cuts a line into plain and matching pieces (case ignored), in order; their texts join back to the line. */
export function highlight(text: string, query: string): Segment[] {
  if (query === '') return [{ text, match: false }];
  const lower = text.toLowerCase();
  const needle = query.toLowerCase();
  const segments: Segment[] = [];
  let from = 0;
  for (let at = lower.indexOf(needle); at !== -1; at = lower.indexOf(needle, from)) {
    if (at > from) segments.push({ text: text.slice(from, at), match: false });
    segments.push({ text: text.slice(at, at + needle.length), match: true });
    from = at + needle.length;
  }
  if (from < text.length || segments.length === 0) segments.push({ text: text.slice(from), match: false });
  return segments;
}

/** The name a download gets: the pod and container, safe as a file name. */
export function downloadName(pod: string, container: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_');
  return `${safe(pod)}_${safe(container)}.log`;
}

/** The text of a download: the lines, each ending in a newline. */
export function downloadText(lines: readonly LogLine[]): string {
  return lines.length === 0 ? '' : `${lines.map((l) => l.text).join('\n')}\n`;
}

/**
 * How long to wait before reconnecting a followed stream after `attempt`
 * consecutive failures (0 for the first): 1 s doubling to at most 15 s, or
 * the server's Retry-After when it gave one.
 */
export function reconnectDelayMs(attempt: number, retryAfterSeconds: number | null = null): number {
  if (retryAfterSeconds !== null && retryAfterSeconds > 0) return retryAfterSeconds * 1000;
  return Math.min(15_000, 1000 * 2 ** Math.min(attempt, 4));
}

/**
 * The `sinceSeconds` that asks again for what was logged since a stream
 * dropped at `droppedAt` (ms epoch), with a second's margin; the server's
 * range is 1 to 30 days.
 */
export function sinceSecondsFor(droppedAt: number, now: number): number {
  return Math.min(2_592_000, Math.max(1, Math.ceil((now - droppedAt) / 1000) + 1));
}

/**
 * Drops the lines a reconnected stream sends again. A follow that resumes
 * with `sinceSeconds` re-reads the last second or so before the drop: those
 * lines match the tail of what is kept, in order, and are skipped; the first
 * line that does not match ends the skipping for good.
 */
export class ResumeDeduper {
  private tail: string[] | null;
  // Where in `tail` the next resent line must be; -1 until the first one.
  private next = -1;

  /** `tail`: the last lines kept before the drop, oldest first. */
  constructor(tail: readonly string[]) {
    this.tail = tail.length > 0 ? [...tail] : null;
  }

  /** The lines of `incoming` that are new. */
  filter(incoming: readonly string[]): string[] {
    let skip = 0;
    while (this.tail !== null && skip < incoming.length) {
      const line = incoming[skip];
      const at = this.next === -1 ? this.tail.lastIndexOf(line ?? '') : this.tail[this.next] === line ? this.next : -1;
      if (at === -1) {
        this.tail = null;
        break;
      }
      this.next = at + 1;
      skip++;
      if (this.next >= this.tail.length) this.tail = null;
    }
    return incoming.slice(skip);
  }
}

/** What the viewer knows when it explains a failure. */
export interface LogContext {
  environment: string;
  pod: string;
  container: string;
  /** After a 404: whether the environment itself still answers (so the pod is what is gone). */
  environmentVisible?: boolean | undefined;
}

/** A sentence naming what went wrong reading logs and what to do about it. */
export function describeLogError(error: unknown, ctx: LogContext): string {
  if (!(error instanceof ApiError)) {
    return `Berth could not be reached to read the logs of ${ctx.pod}. Check your connection.`;
  }
  switch (error.status) {
    case 400: {
      const detail = error.details[0];
      return `Berth cannot read the logs of ${ctx.pod}/${ctx.container}: ${detail ? detail.message : error.message}.`;
    }
    case 401:
      return 'Your session has ended. Log in again to read logs.';
    case 403:
      return `You are not allowed to read logs in “${ctx.environment}”: only its members and admins are.`;
    case 404:
      return ctx.environmentVisible === false
        ? `You are not a member of “${ctx.environment}” (any more), or it was deleted: its logs are not available to you.`
        : `Pod “${ctx.pod}” no longer exists in “${ctx.environment}”. Pick another pod.`;
    case 503:
      return `The cluster is unavailable, so Berth cannot read the logs of ${ctx.pod} right now (${error.message}).`;
    default:
      return `Reading the logs of ${ctx.pod} failed on the server (${error.message}).`;
  }
}
