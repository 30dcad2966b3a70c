import { describe, expect, it } from 'vitest';
import { conditionClass } from './conditions';

describe('conditionClass', () => {
  it('colours by meaning, not by value', () => {
    expect(conditionClass('Ready', 'True')).toBe('ok');
    expect(conditionClass('Ready', 'False')).toBe('bad');
    expect(conditionClass('Degraded', 'True')).toBe('bad');
    expect(conditionClass('Degraded', 'False')).toBe('ok');
  });
  it('leaves Unknown uncoloured', () => {
    expect(conditionClass('Ready', 'Unknown')).toBeUndefined();
  });
});
