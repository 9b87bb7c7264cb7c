// Phones: below 768 px the conversations screen shows one view at a time (list → conversation →
// customer), each a browser-history entry, so the back button (ours or the phone's) steps back.

import { useEffect, useState } from 'preact/hooks';

export type View = 'list' | 'chat' | 'side';

const NARROW = '(max-width: 767px)';

export function isNarrow(): boolean {
  return window.matchMedia(NARROW).matches;
}

/** True while the window is phone-sized; follows rotation and resizing. */
export function useNarrow(): boolean {
  const [narrow, setNarrow] = useState(isNarrow());
  useEffect(() => {
    const mq = window.matchMedia(NARROW);
    const on = () => setNarrow(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return narrow;
}

/**
 * The view shown on a phone, kept in step with browser history: `go` pushes an entry (on a phone
 * only: on a desktop every pane is visible and Back keeps its usual meaning), `back` pops one.
 */
export function useViewHistory(): { view: View; go: (v: View) => void; back: () => void; home: () => void } {
  const [view, setView] = useState<View>(() => stateView(history.state));
  useEffect(() => {
    const onPop = (e: PopStateEvent) => setView(stateView(e.state));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    document.body.dataset.view = view;
  }, [view]);
  const go = (v: View) => {
    if (v === view) return;
    if (isNarrow()) history.pushState({ sbView: v }, '');
    setView(v);
  };
  const back = () => {
    if (isNarrow() && stateView(history.state) !== 'list') history.back();
    else setView(view === 'side' ? 'chat' : 'list');
  };
  const home = () => {
    const depth = { list: 0, chat: 1, side: 2 }[stateView(history.state)];
    if (isNarrow() && depth > 0) history.go(-depth);
    else setView('list');
  };
  return { view, go, back, home };
}

function stateView(state: unknown): View {
  const v = (state as { sbView?: View } | null)?.sbView;
  return v === 'chat' || v === 'side' ? v : 'list';
}

/**
 * The app's height follows the visual viewport, so when the on-screen keyboard opens the
 * composer moves up above it (iOS Safari does not resize the layout viewport for the keyboard).
 */
export function fitToVisualViewport() {
  const vv = window.visualViewport;
  const fit = () => {
    document.documentElement.style.setProperty('--app-height', `${Math.round(vv ? vv.height : window.innerHeight)}px`);
    // iOS scrolls the page up under the keyboard; the app scrolls inside its panes instead.
    if (vv && vv.offsetTop > 0) window.scrollTo(0, 0);
  };
  fit();
  vv?.addEventListener('resize', fit);
  window.addEventListener('resize', fit);
}
