import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';
import { MemoryRouter } from 'react-router';
import { describe, expect, it, vi } from 'vitest';
import { ApiError, describeError } from '../api/errors';
import { emptyForm, fieldId, formFields, mapFieldErrors, newApp, type EnvironmentForm } from '../lib/form';
import { EnvironmentFormFields } from './EnvironmentFormFields';
import { QuantityInput } from './QuantityInput';
import { ErrorNotice, PhaseBadge, UsageBar } from './ui';

const templates = [{ name: 'small', description: 'For trying things out', spec: { quota: { cpu: '2', memory: '4Gi', pods: 20 } } }];

function Harness({ initial, details = [] }: { initial: EnvironmentForm; details?: { field: string; message: string }[] }) {
  const [form, setForm] = useState(initial);
  return <EnvironmentFormFields form={form} onChange={setForm} templates={templates} errors={mapFieldErrors(details, formFields(form))} />;
}

describe('QuantityInput', () => {
  it('labels the amount and its unit and reports both', async () => {
    const onChange = vi.fn();
    render(<QuantityInput id="q" label="Memory" kind="bytes" value={{ amount: '4', unit: 'Gi' }} onChange={onChange} />);
    await userEvent.selectOptions(screen.getByLabelText('Memory unit'), 'MiB');
    expect(onChange).toHaveBeenCalledWith({ amount: '4', unit: 'Mi' });
    await userEvent.type(screen.getByLabelText('Memory'), '0');
    expect(onChange).toHaveBeenLastCalledWith({ amount: '40', unit: 'Gi' });
  });
});

describe('EnvironmentFormFields', () => {
  it('shows each field error next to its input and ties it for screen readers', () => {
    const form = { ...emptyForm('small'), apps: [newApp(), newApp()] };
    render(<Harness initial={form} details={[{ field: 'apps[1].resources.cpu', message: 'must be a CPU quantity such as 500m or 2' }, { field: 'name', message: 'must be 3 to 40 characters' }]} />);
    const cpu = document.getElementById(fieldId('apps[1].resources.cpu'));
    expect(cpu?.getAttribute('aria-describedby')).toContain(`${fieldId('apps[1].resources.cpu')}-error`);
    expect(document.getElementById(`${fieldId('apps[1].resources.cpu')}-error`)?.textContent).toBe('must be a CPU quantity such as 500m or 2');
    expect(screen.getByLabelText('Name')).toHaveProperty('ariaInvalid', 'true');
    expect(document.getElementById(`${fieldId('apps[0].resources.cpu')}-error`)).toBeNull();
  });

  it('shows the template values as hints and adds and removes apps by keyboard', async () => {
    render(<Harness initial={emptyForm('small')} />);
    expect(screen.getAllByText('From the template: 4Gi')).toHaveLength(1);
    screen.getByRole('button', { name: 'Add an app' }).focus();
    await userEvent.keyboard('{Enter}');
    expect(screen.getByRole('group', { name: 'App 1' })).toBeTruthy();
    await userEvent.click(screen.getByRole('button', { name: 'Remove app 1' }));
    expect(screen.queryByRole('group', { name: 'App 1' })).toBeNull();
  });

  it('lets the template be picked with radio buttons', async () => {
    render(<Harness initial={emptyForm('small')} />);
    await userEvent.click(screen.getByRole('radio', { name: /No template/ }));
    expect(screen.getByRole('radio', { name: /No template/ })).toHaveProperty('checked', true);
    expect(screen.queryByText('From the template: 4Gi')).toBeNull();
  });
});

describe('small components', () => {
  it('badges a phase', () => {
    render(<PhaseBadge phase="Ready" />);
    expect(screen.getByText('Ready').className).toContain('phase-ready');
  });

  it('draws usage with a meter, not an inline style', () => {
    const { container } = render(<UsageBar label="requests.cpu" used="1" hard="2" percent={50} />);
    expect(container.querySelector('meter')?.getAttribute('value')).toBe('50');
    expect(container.querySelector('[style]')).toBeNull();
  });

  it('tells people what to do about an error', async () => {
    const retry = vi.fn();
    render(
      <MemoryRouter>
        <ErrorNotice error={new ApiError(429, 'rate_limited', 'too many attempts', [], 30)} retry={retry} />
      </MemoryRouter>,
    );
    expect(screen.getByRole('alert').textContent).toContain('Wait 30 seconds');
    await userEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(retry).toHaveBeenCalled();
    expect(describeError(new TypeError('fetch failed'))).toContain('could not be reached');
  });
});
