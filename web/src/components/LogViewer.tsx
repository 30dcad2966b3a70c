import { useVirtualizer } from '@tanstack/react-virtual';
import { memo, useDeferredValue, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import { environments } from '../api/environments';
import { describeLogError, downloadName, downloadText, highlight, MAX_KEPT_LINES, searchLines } from '../lib/logs';
import { useLogStream, type LogStreamState } from '../lib/logsStream';
import { useNow, useResource } from '../lib/useResource';
import { ErrorNotice } from './ui';
import './LogViewer.css';

/** How many of the last lines to read: the choices offered. */
export const TAIL_CHOICES = [100, 1000, 10_000] as const;
const DEFAULT_TAIL = 1000;
const PODS_POLL_MS = 10_000;
// A line's height before it is measured: exactly one row (LogViewer.css sets
// it in px), so measuring changes only wrapped lines and only ever grows the
// content (a shrink is how a filter or a reset shows, which must not read as
// the reader scrolling up), and End lands on the real end.
const ESTIMATED_LINE_PX = 18;
// Within this of the bottom counts as "at the bottom" for auto-scroll.
const BOTTOM_SLACK_PX = 24;

/**
 * The environment page's log viewer: pick a pod and one of its containers,
 * read its last lines or follow it, search (matches highlighted and counted),
 * download what is shown. Lines are rendered virtually, so 10,000 stay
 * smooth; at most MAX_KEPT_LINES are kept, the oldest dropped.
 */
export function LogViewer({ environment }: { environment: string }) {
  const workloads = useResource((signal) => environments.workloads(environment, signal), `logs-pods-${environment}`, PODS_POLL_MS);
  const pods = useMemo(() => workloads.data?.pods ?? [], [workloads.data]);
  const [podChoice, setPod] = useState('');
  const [containerChoice, setContainer] = useState('');
  const [tailLines, setTailLines] = useState<number>(DEFAULT_TAIL);
  const [follow, setFollow] = useState(false);
  const [query, setQuery] = useState('');
  const [onlyMatches, setOnlyMatches] = useState(true);
  const [generation, setGeneration] = useState(0);

  // The chosen pod while it is listed (else the first), and likewise its container.
  const pod = pods.find((p) => p.name === podChoice) ?? pods[0];
  const containers = pod?.containers ?? [];
  const container = containers.includes(containerChoice) ? containerChoice : (containers[0] ?? '');
  const podName = pod?.name ?? '';

  const source = podName && container ? { environment, pod: podName, container, tailLines, follow } : null;
  const { buffer, state } = useLogStream(source, generation);

  const search = useDeferredValue(query.trim());
  const result = useMemo(() => searchLines(buffer.lines, search), [buffer.lines, search]);
  const shown = search && onlyMatches ? result.lines : buffer.lines;

  const download = () => {
    const url = URL.createObjectURL(new Blob([downloadText(shown)], { type: 'text/plain;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = downloadName(podName, container);
    a.click();
    window.setTimeout(() => URL.revokeObjectURL(url), 0);
  };

  return (
    <section className="card log-viewer" aria-labelledby="logs-heading">
      <h2 id="logs-heading">Logs</h2>
      {workloads.loading && !workloads.data ? (
        <p className="muted">Loading pods…</p>
      ) : workloads.error && !workloads.data ? (
        <ErrorNotice error={workloads.error} retry={workloads.reload} />
      ) : pods.length === 0 ? (
        <p className="muted">No pods run here yet: logs appear once a pod has started.</p>
      ) : (
        <>
          <div className="log-controls">
            <div className="field">
              <label htmlFor="log-pod">Pod</label>
              <select id="log-pod" value={podName} onChange={(e) => setPod(e.target.value)}>
                {pods.map((p) => (
                  <option key={p.name} value={p.name}>
                    {p.name}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="log-container">Container</label>
              <select id="log-container" value={container} onChange={(e) => setContainer(e.target.value)}>
                {containers.map((c) => (
                  <option key={c} value={c}>
                    {c}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor="log-tail">Last lines</label>
              <select id="log-tail" value={tailLines} onChange={(e) => setTailLines(Number(e.target.value))}>
                {TAIL_CHOICES.map((n) => (
                  <option key={n} value={n}>
                    {n.toLocaleString('en')}
                  </option>
                ))}
              </select>
            </div>
            <label className="check">
              <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.target.checked)} /> Follow
            </label>
            <div className="field log-search">
              <label htmlFor="log-search">Search</label>
              <input id="log-search" type="search" value={query} onChange={(e) => setQuery(e.target.value)} autoComplete="off" spellCheck={false} />
            </div>
            <label className="check">
              <input type="checkbox" checked={onlyMatches} onChange={(e) => setOnlyMatches(e.target.checked)} /> Only matching lines
            </label>
            <div className="actions">
              <button type="button" className="secondary" onClick={() => setGeneration((g) => g + 1)}>
                Reload
              </button>
              <button type="button" className="secondary" onClick={download} disabled={shown.length === 0}>
                Download
              </button>
            </div>
          </div>
          <LogStatus state={state} environment={environment} pod={podName} container={container} />
          {/* Only the search's count is announced: the line count changes with every followed line. */}
          <p className="log-summary small">
            <span role="status">
              {search ? `${result.matches.toLocaleString('en')} ${result.matches === 1 ? 'match' : 'matches'} in ${result.lines.length.toLocaleString('en')} of ` : ''}
            </span>
            {buffer.lines.length.toLocaleString('en')} {buffer.lines.length === 1 ? 'line' : 'lines'}
            {buffer.dropped > 0 &&
              ` · ${buffer.dropped.toLocaleString('en')} older lines dropped: the viewer keeps the last ${MAX_KEPT_LINES.toLocaleString('en')}`}
          </p>
          {/* A new read starts a fresh list: at the end, not paused. */}
          <LogLines key={`${podName}/${container}/${tailLines}/${generation}`} lines={shown} query={search} follow={follow} label={`Log lines of ${podName}, container ${container}`} busy={state.phase === 'loading'} />
        </>
      )}
    </section>
  );
}

function LogStatus({ state, environment, pod, container }: { state: LogStreamState; environment: string; pod: string; container: string }) {
  const now = useNow(1000);
  const ctx = { environment, pod, container, environmentVisible: state.environmentVisible };
  if (state.phase === 'failed') {
    return (
      <div className="notice error" role="alert">
        <p>{describeLogError(state.error, ctx)}</p>
      </div>
    );
  }
  if (state.phase === 'reconnecting') {
    const seconds = state.retryAt === null ? 0 : Math.max(0, Math.ceil((state.retryAt - now) / 1000));
    return (
      <div className="notice error" role="alert">
        <p>
          {state.error ? describeLogError(state.error, ctx) : 'The log stream ended.'} {seconds > 0 ? `Reconnecting in ${seconds} s…` : 'Reconnecting…'}
        </p>
      </div>
    );
  }
  const text =
    state.phase === 'loading'
      ? 'Loading…'
      : state.phase === 'following'
        ? 'Following: new lines appear as they are logged.'
        : state.phase === 'stopped'
          ? 'Stopped following: the lines read so far stay.'
          : '';
  return text ? <p className="log-phase muted small">{text}</p> : null;
}

/** The lines, rendered virtually; follows the end until the reader scrolls up. */
function LogLines({ lines, query, follow, label, busy }: { lines: readonly { id: number; text: string }[]; query: string; follow: boolean; label: string; busy: boolean }) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const [stick, setStick] = useState(true);
  const lastTop = useRef(0);
  const lastHeight = useRef(0);
  const virtualizer = useVirtualizer({
    count: lines.length,
    getScrollElement: () => scrollRef.current,
    estimateSize: () => ESTIMATED_LINE_PX,
    getItemKey: (index) => lines[index]?.id ?? index,
    overscan: 20,
  });

  // New lines scroll into view while the reader is at the end.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && stick && lines.length > 0) virtualizer.scrollToIndex(lines.length - 1, { align: 'end' });
  }, [lines, stick, virtualizer]);

  // A new follow starts at the end again.
  useEffect(() => {
    if (follow) setStick(true);
  }, [follow]);

  const onScroll = () => {
    const el = scrollRef.current;
    if (!el) return;
    const { scrollTop, scrollHeight, clientHeight } = el;
    // Only the reader scrolls up: our own scrolling only ever goes down, and
    // content that shrank (a search, fewer lines) moves the top by itself.
    if (scrollHeight - scrollTop - clientHeight <= BOTTOM_SLACK_PX) setStick(true);
    else if (scrollTop < lastTop.current && scrollHeight >= lastHeight.current) setStick(false);
    lastTop.current = scrollTop;
    lastHeight.current = scrollHeight;
  };

  // End means "follow the end again", even where wrapped lines measured on
  // the way make the browser's own scroll fall short of it.
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'End') setStick(true);
  };

  const items = virtualizer.getVirtualItems();
  return (
    <div className="log-frame">
      <div ref={scrollRef} className="log-lines" role="log" aria-live="off" aria-label={label} aria-busy={busy} tabIndex={0} onScroll={onScroll} onKeyDown={onKeyDown}>
        {lines.length === 0 ? (
          <p className="muted log-empty">{busy ? 'Loading…' : query ? 'No line matches the search.' : 'No lines.'}</p>
        ) : (
          <div className="log-sizer" style={{ height: virtualizer.getTotalSize() }}>
            <div className="log-window" style={{ transform: `translateY(${items[0]?.start ?? 0}px)` }}>
              {items.map((item) => {
                const line = lines[item.index];
                return line ? <LogLineRow key={item.key} index={item.index} text={line.text} query={query} measure={virtualizer.measureElement} /> : null;
              })}
            </div>
          </div>
        )}
      </div>
      {!stick && lines.length > 0 && (
        <button type="button" className="small log-jump" onClick={() => setStick(true)}>
          Paused: jump to the latest line
        </button>
      )}
    </div>
  );
}

const LogLineRow = memo(function LogLineRow({ index, text, query, measure }: { index: number; text: string; query: string; measure: (el: Element | null) => void }) {
  return (
    <div className="log-line" data-index={index} ref={measure}>
      {highlight(text, query).map((s, i) => (s.match ? <mark key={i}>{s.text}</mark> : s.text))}
      {text === '' ? '\u00a0' : null}
    </div>
  );
});
