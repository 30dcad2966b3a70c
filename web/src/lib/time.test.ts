import { describe, expect, it } from 'vitest';
import { formatRemaining } from './time';

describe('formatRemaining', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('counts down in the two largest units', () => {
    expect(formatRemaining('2026-01-03T03:00:00Z', now)).toBe('2d 3h');
    expect(formatRemaining('2026-01-01T04:12:00Z', now)).toBe('4h 12m');
    expect(formatRemaining('2026-01-01T00:03:20Z', now)).toBe('3m 20s');
  });
  it('says expired once the time has passed', () => {
    expect(formatRemaining('2025-12-31T23:59:59Z', now)).toBe('expired');
  });
});
