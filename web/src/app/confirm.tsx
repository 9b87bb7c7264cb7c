// A confirmation before what cannot be taken back: says what will happen, focuses "Cancel",
// Escape cancels.

import { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import { t } from './i18n';

export function Confirm(props: { title: string; body: string; confirm: string; onConfirm: () => void; onCancel: () => void; children?: ComponentChildren }) {
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    cancel.current?.focus();
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && props.onCancel();
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);
  return (
    <div class="modal-back" onClick={(e) => e.target === e.currentTarget && props.onCancel()}>
      <div class="modal" role="alertdialog" aria-modal="true" aria-labelledby="confirm-title" aria-describedby="confirm-body" data-testid="confirm">
        <h2 id="confirm-title">{props.title}</h2>
        <p id="confirm-body">{props.body}</p>
        <div class="row end wrap">
          <button ref={cancel} onClick={props.onCancel} data-testid="confirm-cancel">
            {t('chat.cancel')}
          </button>
          {props.children}
          <button class="danger" onClick={props.onConfirm} data-testid="confirm-ok">
            {props.confirm}
          </button>
        </div>
      </div>
    </div>
  );
}
