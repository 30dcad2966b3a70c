import { renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { useLogStream, type LogSource } from './logsStream';

const source: LogSource = { environment: 'team-a', pod: 'web-1', container: 'web', tailLines: 100, follow: true };

// A text/plain answer whose body is the given chunks, then either ends or
// stays open until the request is aborted.
function streamed(chunks: string[], signal: AbortSignal, stayOpen = false): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(new TextEncoder().encode(c));
      if (!stayOpen) controller.close();
      else signal.addEventListener('abort', () => controller.error(new DOMException('aborted', 'AbortError')));
    },
  });
  return new Response(body, { status: 200, headers: { 'content-type': 'text/plain' } });
}

function errorAnswer(status: number): Response {
  return new Response(JSON.stringify({ error: { code: status === 404 ? 'not_found' : 'unavailable', message: 'no' } }), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

const texts = (lines: { text: string }[]) => lines.map((l) => l.text);

afterEach(() => vi.unstubAllGlobals());

describe('useLogStream', () => {
  it('resumes a dropped follow from where it was, without repeating lines', async () => {
    const urls: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn((url: string, init: RequestInit) => {
        urls.push(url);
        const signal = init.signal as AbortSignal;
        return Promise.resolve(urls.length === 1 ? streamed(['a\nb', '\nc\n'], signal) : streamed(['b\nc\nd\n'], signal, true));
      }),
    );
    const { result, unmount } = renderHook(() => useLogStream(source, 0));
    await waitFor(() => expect(texts(result.current.buffer.lines)).toEqual(['a', 'b', 'c', 'd']), { timeout: 3000 });
    expect(urls[0]).toBe('/api/v1/environments/team-a/pods/web-1/logs?container=web&follow=true&tailLines=100');
    expect(urls[1]).toMatch(/^\/api\/v1\/environments\/team-a\/pods\/web-1\/logs\?container=web&follow=true&sinceSeconds=\d+$/);
    expect(result.current.state.phase).toBe('following');
    unmount();
  });

  it('keeps the lines and closes the stream when following is turned off', async () => {
    let signal: AbortSignal | undefined;
    const fetch = vi.fn((_url: string, init: RequestInit) => {
      signal = init.signal as AbortSignal;
      return Promise.resolve(streamed(['one\ntwo\n'], signal, true));
    });
    vi.stubGlobal('fetch', fetch);
    const { result, rerender } = renderHook((s: LogSource) => useLogStream(s, 0), { initialProps: source });
    await waitFor(() => expect(texts(result.current.buffer.lines)).toEqual(['one', 'two']));
    rerender({ ...source, follow: false });
    await waitFor(() => expect(result.current.state.phase).toBe('stopped'));
    expect(signal?.aborted).toBe(true);
    expect(fetch).toHaveBeenCalledTimes(1);
    expect(texts(result.current.buffer.lines)).toEqual(['one', 'two']);
  });

  it('closes the stream of the pod it leaves and reads the one picked', async () => {
    const signals: AbortSignal[] = [];
    const urls: string[] = [];
    vi.stubGlobal(
      'fetch',
      vi.fn((url: string, init: RequestInit) => {
        urls.push(url);
        signals.push(init.signal as AbortSignal);
        return Promise.resolve(streamed([`${url.includes('web-1') ? 'first' : 'second'}\n`], init.signal as AbortSignal, true));
      }),
    );
    const { result, rerender, unmount } = renderHook((s: LogSource) => useLogStream(s, 0), { initialProps: source });
    await waitFor(() => expect(texts(result.current.buffer.lines)).toEqual(['first']));
    rerender({ ...source, pod: 'web-2' });
    await waitFor(() => expect(texts(result.current.buffer.lines)).toEqual(['second']));
    expect(signals[0]?.aborted).toBe(true);
    expect(urls[1]).toContain('/pods/web-2/logs?');
    unmount();
    expect(signals[1]?.aborted).toBe(true);
  });

  it('stops on a 404 and tells whether the environment still answers', async () => {
    vi.stubGlobal(
      'fetch',
      vi.fn((url: string) => Promise.resolve(url.includes('/logs') ? errorAnswer(404) : new Response('{}', { status: 200 }))),
    );
    const { result } = renderHook(() => useLogStream(source, 0));
    await waitFor(() => expect(result.current.state.phase).toBe('failed'));
    expect(result.current.state.environmentVisible).toBe(true);
  });

  it('retries a follow while the cluster is unavailable, saying when', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.resolve(errorAnswer(503))));
    const { result, unmount } = renderHook(() => useLogStream(source, 0));
    await waitFor(() => expect(result.current.state.phase).toBe('reconnecting'));
    expect(result.current.state.retryAt).toBeGreaterThan(Date.now());
    unmount();
  });
});
