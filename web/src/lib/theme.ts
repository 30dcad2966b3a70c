import { useSyncExternalStore } from 'react';

/** The person's choice: a fixed light or dark theme, or the system's. */
export type Theme = 'light' | 'dark' | 'system';

const KEY = 'berth-theme';
const DARK = '(prefers-color-scheme: dark)';
const listeners = new Set<() => void>();

function isTheme(value: unknown): value is Theme {
  return value === 'light' || value === 'dark' || value === 'system';
}

/** The remembered choice; the system's theme when none was made (or storage is unavailable). */
export function storedTheme(): Theme {
  try {
    const value = localStorage.getItem(KEY);
    return isTheme(value) ? value : 'system';
  } catch {
    return 'system';
  }
}

/** Shows `theme` (the stylesheet reads `data-theme` on the root element) and remembers it. */
export function applyTheme(theme: Theme, remember = true): void {
  const root = document.documentElement;
  if (theme === 'system') delete root.dataset.theme;
  else root.dataset.theme = theme;
  if (remember) {
    try {
      localStorage.setItem(KEY, theme);
    } catch {
      // Private browsing without storage: the choice lasts for this page only.
    }
  }
  listeners.forEach((listener) => listener());
}

function subscribe(onChange: () => void): () => void {
  listeners.add(onChange);
  const media = window.matchMedia(DARK);
  media.addEventListener('change', onChange);
  // Another tab's choice applies here too.
  const onStorage = (e: StorageEvent) => {
    if (e.key === KEY) applyTheme(storedTheme(), false);
  };
  window.addEventListener('storage', onStorage);
  return () => {
    listeners.delete(onChange);
    media.removeEventListener('change', onChange);
    window.removeEventListener('storage', onStorage);
  };
}

/** The current choice, kept current. */
export function useTheme(): Theme {
  return useSyncExternalStore(subscribe, storedTheme);
}

/** Whether the page shows dark now (the choice, or the system's when the choice is `system`). */
export function useDark(): boolean {
  return useSyncExternalStore(subscribe, () => {
    const theme = storedTheme();
    return theme === 'system' ? window.matchMedia(DARK).matches : theme === 'dark';
  });
}
