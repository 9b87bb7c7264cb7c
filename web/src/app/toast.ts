// Toasts from anywhere in the app (the shell shows them); `undo` adds an Undo button.
export const toastSink: { push: (text: string, undo?: () => void) => void } = { push: () => undefined };

export function showToast(text: string, undo?: () => void) {
  toastSink.push(text, undo);
}
