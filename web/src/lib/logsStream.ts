/**
 * Reading a pod's logs into the viewer: one fetch whose body is read as a
 * stream (so a followed log shows lines as they come), lines appended once per
 * animation frame, reconnection after a dropped follow.
 */
import { useEffect, useRef, useState } from 'react';
import { errorFromResponse, ApiError } from '../api/errors';
import {
  appendLines,
  EMPTY_BUFFER,
  LineSplitter,
  logsUrl,
  reconnectDelayMs,
  ResumeDeduper,
  sinceSecondsFor,
  type LogBuffer,
  type LogQuery,
} from './logs';

/** What is read: nothing until both a pod and a container are chosen. */
export interface LogSource {
  environment: string;
  pod: string;
  container: string;
  tailLines: number;
  follow: boolean;
}

/**
 * Where the reading stands. `loading`: the first answer is on its way or
 * being read; `following`: the stream is open; `done`: a plain read finished;
 * `stopped`: following was turned off, the lines stay; `reconnecting`: a
 * follow dropped and is retried at `retryAt` (ms epoch); `failed`: no retry
 * can help (the pod is gone, no access, a bad parameter).
 */
export type LogPhase = 'idle' | 'loading' | 'following' | 'done' | 'stopped' | 'reconnecting' | 'failed';

export interface LogStreamState {
  phase: LogPhase;
  error: unknown;
  retryAt: number | null;
  /** After a 404: whether the environment still answers, which tells a gone pod from lost access. */
  environmentVisible: boolean | undefined;
}

const IDLE: LogStreamState = { phase: 'idle', error: null, retryAt: null, environmentVisible: undefined };

// Answers no retry can change: a bad parameter, no session, no access, gone.
const FINAL = new Set([400, 401, 403, 404]);
// How many kept lines a resumed follow compares against to skip resent ones.
const RESUME_TAIL = 500;

/**
 * Reads `source` while it is set. Changing the pod, container, tail or
 * `generation` starts over with an empty buffer; turning `follow` off only
 * closes the stream, keeping the lines; unmounting closes it too.
 */
export function useLogStream(source: LogSource | null, generation: number): { buffer: LogBuffer; state: LogStreamState } {
  const [buffer, setBuffer] = useState<LogBuffer>(EMPTY_BUFFER);
  const [state, setState] = useState<LogStreamState>(IDLE);
  const bufferRef = useRef<LogBuffer>(EMPTY_BUFFER);
  // The session a follow was started for, so that turning follow off keeps its lines.
  const followingRef = useRef('');

  const environment = source?.environment ?? '';
  const pod = source?.pod ?? '';
  const container = source?.container ?? '';
  const tailLines = source?.tailLines ?? 0;
  const follow = source?.follow ?? false;

  useEffect(() => {
    if (!pod || !container) {
      followingRef.current = '';
      bufferRef.current = EMPTY_BUFFER;
      setBuffer(EMPTY_BUFFER);
      setState(IDLE);
      return;
    }
    const session = JSON.stringify([environment, pod, container, tailLines, generation]);
    if (!follow && followingRef.current === session) {
      // Only following was turned off: the previous run's cleanup closed the stream.
      followingRef.current = '';
      setState((s) => (s.phase === 'failed' ? s : { ...IDLE, phase: 'stopped' }));
      return;
    }
    followingRef.current = follow ? session : '';
    bufferRef.current = EMPTY_BUFFER;
    setBuffer(EMPTY_BUFFER);

    const controller = new AbortController();
    const { signal } = controller;
    let pending: string[] = [];
    let frame = 0;
    // Appends wait for the next frame, so a burst of chunks costs one render.
    const commit = () => {
      frame = 0;
      bufferRef.current = appendLines(bufferRef.current, pending);
      pending = [];
      setBuffer(bufferRef.current);
    };
    const push = (lines: string[]) => {
      if (lines.length === 0) return;
      pending.push(...lines);
      if (frame === 0) frame = requestAnimationFrame(commit);
    };
    const flushNow = () => {
      if (frame !== 0) cancelAnimationFrame(frame);
      commit();
    };

    const run = async () => {
      let attempt = 0;
      let droppedAt: number | null = null;
      while (!signal.aborted) {
        const query: LogQuery = { container };
        if (follow) query.follow = true;
        let dedupe: ResumeDeduper | null = null;
        if (droppedAt === null) {
          query.tailLines = tailLines;
        } else {
          query.sinceSeconds = sinceSecondsFor(droppedAt, Date.now());
          dedupe = new ResumeDeduper(bufferRef.current.lines.slice(-RESUME_TAIL).map((l) => l.text));
        }
        setState((s) => (droppedAt === null ? { ...IDLE, phase: 'loading' } : { ...s, phase: 'reconnecting', retryAt: null }));
        let received = 0;
        try {
          const response = await fetch(logsUrl({ name: environment, pod }, query), {
            signal,
            credentials: 'same-origin',
            headers: { Accept: 'text/plain' },
          });
          if (!response.ok) throw await errorFromResponse(response);
          if (!response.body) throw new Error('the answer has no body');
          setState({ ...IDLE, phase: follow ? 'following' : 'loading' });
          const splitter = new LineSplitter();
          const reader = response.body.getReader();
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            const lines = splitter.push(value);
            const fresh = dedupe ? dedupe.filter(lines) : lines;
            received += fresh.length;
            push(fresh);
          }
          const last = splitter.flush();
          push(dedupe ? dedupe.filter(last) : last);
          flushNow();
          if (!follow) {
            setState({ ...IDLE, phase: 'done' });
            return;
          }
          // The server ended a followed stream (a restarted apiserver, a
          // stopped container): resume from here, backing off while nothing new comes.
          droppedAt = Date.now();
          attempt = received > 0 ? 0 : attempt + 1;
          await wait(reconnectDelayMs(attempt), signal);
        } catch (err) {
          if (signal.aborted) return;
          flushNow();
          if (err instanceof ApiError && FINAL.has(err.status)) {
            const environmentVisible = err.status === 404 ? await stillVisible(environment, signal) : undefined;
            if (!signal.aborted) setState({ phase: 'failed', error: err, retryAt: null, environmentVisible });
            return;
          }
          if (!follow && droppedAt === null) {
            setState({ ...IDLE, phase: 'failed', error: err });
            return;
          }
          droppedAt ??= Date.now();
          const delay = reconnectDelayMs(attempt++, err instanceof ApiError ? err.retryAfter : null);
          setState({ ...IDLE, phase: 'reconnecting', error: err, retryAt: Date.now() + delay });
          await wait(delay, signal);
        }
      }
    };
    void run();
    return () => {
      controller.abort();
      // Lines already read stay (they matter when only following stops).
      if (frame !== 0) {
        cancelAnimationFrame(frame);
        commit();
      }
    };
  }, [environment, pod, container, tailLines, follow, generation]);

  return { buffer, state };
}

// Whether the environment still answers the caller: after a 404 on the logs,
// that tells "the pod is gone" from "you lost access".
async function stillVisible(environment: string, signal: AbortSignal): Promise<boolean | undefined> {
  try {
    const response = await fetch(`/api/v1/environments/${encodeURIComponent(environment)}`, {
      signal,
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
    });
    return response.ok ? true : response.status === 404 ? false : undefined;
  } catch {
    return undefined;
  }
}

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        window.clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
