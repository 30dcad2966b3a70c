/**
 * One signal for "this browser's session is over", whichever way it is noticed:
 * an API answer 401 in this tab, a live view closed and refused on reconnect,
 * or a logout in another tab of the same browser (BroadcastChannel, so that
 * tab need not wait for its next request or the stream's next heartbeat).
 */
type Listener = () => void;

const listeners = new Set<Listener>();
const CHANNEL = 'berth-session';
const channel = typeof BroadcastChannel === 'undefined' ? null : new BroadcastChannel(CHANNEL);
channel?.addEventListener('message', (event: MessageEvent) => {
  if (event.data === 'ended') notify();
});

function notify() {
  for (const listener of [...listeners]) listener();
}

/** Calls `listener` whenever the session is found ended; returns the unsubscribe. */
export function onSessionEnded(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** This tab found the session ended (a 401 from an API call or a live view). */
export function sessionEnded(): void {
  notify();
}

/** This tab logged out: tell the browser's other tabs. */
export function announceLogout(): void {
  channel?.postMessage('ended');
}

/**
 * Whether a 401 from `path` means the session ended: the login and register
 * endpoints answer 401 for wrong credentials, which ends nothing.
 */
export function endsSession(status: number, path: string): boolean {
  return status === 401 && !path.startsWith('/api/v1/auth/');
}
