import { render, screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { QuotaBanner } from './MetricsPanel';

describe('QuotaBanner', () => {
  it('names each nearly full resource with its figures, as a status people are told of', () => {
    render(<QuotaBanner hard={{ pods: '10', 'requests.cpu': '2', 'requests.memory': '4Gi' }} used={{ pods: '9', 'requests.cpu': '2', 'requests.memory': '1Gi' }} />);
    const banner = screen.getByRole('status');
    expect(banner.textContent).toContain('Quota nearly full.');
    expect(banner.textContent).toContain('requests.cpu: 2 of 2 used (100 %); pods: 9 of 10 used (90 %).');
    expect(banner.textContent).not.toContain('requests.memory');
  });
  it('is absent below 90 % of every limit', () => {
    const { container } = render(<QuotaBanner hard={{ pods: '10', 'services.nodeports': '0' }} used={{ pods: '8', 'services.nodeports': '0' }} />);
    expect(container.innerHTML).toBe('');
  });
});
