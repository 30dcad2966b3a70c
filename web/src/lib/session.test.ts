import { describe, expect, it } from 'vitest';
import { endsSession, onSessionEnded, sessionEnded } from './session';

describe('session', () => {
  it('a 401 ends the session except from login and register', () => {
    expect(endsSession(401, '/api/v1/environments')).toBe(true);
    expect(endsSession(401, '/api/v1/me')).toBe(true);
    expect(endsSession(401, '/api/v1/auth/login')).toBe(false);
    expect(endsSession(403, '/api/v1/environments')).toBe(false);
  });
  it('tells every listener until it unsubscribes', () => {
    let calls = 0;
    const off = onSessionEnded(() => calls++);
    sessionEnded();
    off();
    sessionEnded();
    expect(calls).toBe(1);
  });
});
