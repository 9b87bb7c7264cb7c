// The agent's live connection: reconnects with backoff and resumes from the last cursor, so no
// event is lost while the network blinks.

export interface LiveEvent {
  type: string;
  cursor: number | null;
  inbox_id?: string | null;
  conversation_id?: string | null;
  [k: string]: unknown;
}

type Listener = (e: LiveEvent) => void;
type StatusListener = (connected: boolean) => void;

export class Realtime {
  private ws: WebSocket | null = null;
  private cursor: number | null = null;
  private listeners = new Set<Listener>();
  private statusListeners = new Set<StatusListener>();
  private retry = 0;
  private stopped = false;
  private timer: number | undefined;
  connected = false;

  start() {
    this.stopped = false;
    this.open();
  }

  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close();
  }

  on(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  onStatus(l: StatusListener): () => void {
    this.statusListeners.add(l);
    return () => this.statusListeners.delete(l);
  }

  send(frame: Record<string, unknown>) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private setConnected(c: boolean) {
    this.connected = c;
    this.statusListeners.forEach((l) => l(c));
  }

  private open() {
    const proto = location.protocol === 'https:' ? 'wss' : 'ws';
    const since = this.cursor === null ? '' : `?since=${this.cursor}`;
    const ws = new WebSocket(`${proto}://${location.host}/api/v1/ws${since}`);
    this.ws = ws;
    ws.onmessage = (m) => {
      let e: LiveEvent;
      try {
        e = JSON.parse(m.data);
      } catch {
        return;
      }
      if (typeof e.cursor === 'number') this.cursor = e.cursor;
      if (e.type === 'hello') {
        this.retry = 0;
        this.setConnected(true);
      }
      this.listeners.forEach((l) => l(e));
    };
    ws.onclose = () => {
      this.setConnected(false);
      if (this.stopped) return;
      const delay = Math.min(15000, 500 * 2 ** this.retry++) * (0.75 + Math.random() / 2);
      this.timer = window.setTimeout(() => this.open(), delay);
    };
  }
}

export const realtime = new Realtime();
