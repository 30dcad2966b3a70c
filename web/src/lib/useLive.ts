import { useEffect, useReducer, useState } from 'react';
import type { Environment } from '../api/environments';
import { applyEvent, applySnapshot, emptyLive, parseLiveEvent, type LiveEvent, type LiveState } from './live';

/** How long to wait before opening a live view again that the server refused for a reason other than the session. */
const REOPEN_MS = 5000;

type Action = { type: 'event'; event: LiveEvent } | { type: 'snapshot'; items: Environment[] } | { type: 'reset' };

function reduce(state: LiveState, action: Action): LiveState {
  switch (action.type) {
    case 'event':
      return applyEvent(state, action.event);
    case 'snapshot':
      return applySnapshot(state, action.items);
    case 'reset':
      return emptyLive();
  }
}

export interface Live {
  state: LiveState;
  /** Merges a `GET` answer: call it with every snapshot loaded. */
  snapshot: (items: Environment[]) => void;
  /** Set while the live view is down and EventSource is reconnecting. */
  reconnecting: boolean;
}

/**
 * Follows `url` (a `?watch=true` view) with EventSource, which reconnects by
 * itself after a dropped connection, sending `Last-Event-ID` so nothing is
 * missed. A view the server refuses (EventSource closes on any answer but
 * 200: 401 once the session ended, 404 once the environment is gone) is
 * handed to `refused`, which finds out why with a plain request (whose 401
 * ends the session for every page); the view is then opened again after a while.
 */
export function useLive(url: string, refused: () => void): Live {
  const [state, dispatch] = useReducer(reduce, undefined, emptyLive);
  const [reconnecting, setReconnecting] = useState(false);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    dispatch({ type: 'reset' });
  }, [url]);

  useEffect(() => {
    const source = new EventSource(url);
    let timer: number | undefined;
    const onMessage = (event: MessageEvent<string>) => {
      const parsed = parseLiveEvent(event.type, event.data, event.lastEventId);
      if (parsed) dispatch({ type: 'event', event: parsed });
    };
    source.addEventListener('environment', onMessage);
    source.addEventListener('deleted', onMessage);
    source.addEventListener('open', () => setReconnecting(false));
    source.addEventListener('error', () => {
      if (source.readyState === EventSource.CLOSED) {
        refused();
        timer = window.setTimeout(() => setAttempt((a) => a + 1), REOPEN_MS);
      } else {
        setReconnecting(true);
      }
    });
    return () => {
      source.close();
      window.clearTimeout(timer);
    };
    // `refused` is read when called; a new function each render must not reopen the view.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [url, attempt]);

  const snapshot = (items: Environment[]) => dispatch({ type: 'snapshot', items });
  return { state, snapshot, reconnecting };
}
