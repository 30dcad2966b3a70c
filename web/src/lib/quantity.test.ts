import { describe, expect, it } from 'vitest';
import { joinQuantity, parseQuantity, splitQuantity, usagePercent } from './quantity';

describe('quantity inputs', () => {
  it('splits a quantity into amount and offered unit', () => {
    expect(splitQuantity('500m', 'cpu')).toEqual({ amount: '500', unit: 'm' });
    expect(splitQuantity('2', 'cpu')).toEqual({ amount: '2', unit: '' });
    expect(splitQuantity('4Gi', 'bytes')).toEqual({ amount: '4', unit: 'Gi' });
    expect(splitQuantity(undefined, 'bytes')).toEqual({ amount: '', unit: 'Gi' });
  });

  it('keeps a unit the picker does not offer inside the amount', () => {
    const value = splitQuantity('1G', 'bytes');
    expect(value).toEqual({ amount: '1G', unit: '' });
    expect(joinQuantity(value)).toBe('1G');
  });

  it('joins an amount with its unit, and leaves empty amounts out', () => {
    expect(joinQuantity({ amount: '250', unit: 'm' })).toBe('250m');
    expect(joinQuantity({ amount: ' 1.5 ', unit: 'Gi' })).toBe('1.5Gi');
    expect(joinQuantity({ amount: '', unit: 'Gi' })).toBeUndefined();
  });

  it('reads quantities as numbers', () => {
    expect(parseQuantity('500m')).toBe(0.5);
    expect(parseQuantity('4Gi')).toBe(4 * 2 ** 30);
    expect(parseQuantity('1G')).toBe(1e9);
    expect(parseQuantity(20)).toBe(20);
    expect(parseQuantity('lots')).toBeNull();
  });

  it('computes usage as a clamped percentage', () => {
    expect(usagePercent('1', '2')).toBe(50);
    expect(usagePercent('512Mi', '1Gi')).toBe(50);
    expect(usagePercent('3', '2')).toBe(100);
    expect(usagePercent(undefined, '2')).toBe(0);
    expect(usagePercent('1', '0')).toBe(0);
  });
});
