// Form errors: a 422 names the field it is about and why (`field`, `reason`); the form shows it
// beside that field, in the agent's language, and anything else once for the whole form.

import { useState } from 'preact/hooks';
import { ApiError } from './api';
import { errorText, fieldErrorText, fieldLabel, t } from './i18n';

export interface FormErrors {
  /** The error for the whole form ('' when none). */
  general: string;
  /** The error beside this field ('' when none); `name` also matches its sub-fields. */
  of(name: string): string;
  fail(e: unknown): void;
  clear(): void;
}

/** `shown`: the fields this form shows (an error about any other one goes to `general`). */
export function useFormErrors(shown: string[]): FormErrors {
  const [state, set] = useState({ general: '', field: '', text: '' });
  const covers = (name: string, field: string) => field === name || field.startsWith(`${name}.`) || field.startsWith(`${name}[`);
  return {
    general: state.general,
    of: (name) => (state.field && covers(name, state.field) ? state.text : ''),
    fail: (e) => {
      if (!(e instanceof ApiError)) {
        set({ general: t('error.network'), field: '', text: '' });
      } else if (e.field && shown.some((n) => covers(n, e.field ?? ''))) {
        set({ general: '', field: e.field, text: fieldErrorText(e) });
      } else if (e.field) {
        set({ general: `${fieldLabel(e.field)}: ${fieldErrorText(e)}`, field: '', text: '' });
      } else {
        set({ general: errorText(e.code, e.message), field: '', text: '' });
      }
    },
    clear: () => set({ general: '', field: '', text: '' }),
  };
}

/** The error beside a field, announced to screen readers. */
export function FieldError({ text }: { text: string }) {
  return text ? (
    <span class="field-error" role="alert" data-testid="field-error">
      {text}
    </span>
  ) : null;
}
