// Inline SVG icons: they render the same on every system, with or without an emoji font.

const P = { width: 18, height: 18, viewBox: '0 0 24 24', fill: 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round' } as const;

export const Smile = () => (
  <svg {...P} aria-hidden="true">
    <circle cx="12" cy="12" r="10" />
    <path d="M8 14s1.5 2 4 2 4-2 4-2" />
    <line x1="9" y1="9" x2="9.01" y2="9" />
    <line x1="15" y1="9" x2="15.01" y2="9" />
  </svg>
);

export const Clip = () => (
  <svg {...P} aria-hidden="true">
    <path d="M21.44 11.05l-9.19 9.19a6 6 0 0 1-8.49-8.49l9.19-9.19a4 4 0 0 1 5.66 5.66l-9.2 9.19a2 2 0 0 1-2.83-2.83l8.49-8.48" />
  </svg>
);

export const Images = () => (
  <svg {...P} aria-hidden="true">
    <rect x="3" y="3" width="18" height="18" rx="2" />
    <circle cx="8.5" cy="8.5" r="1.5" />
    <path d="M21 15l-5-5L5 21" />
  </svg>
);

export const ChannelIcon = ({ channel }: { channel: string }) => {
  const letter: Record<string, string> = { livechat: 'W', messenger: 'M', instagram: 'I', whatsapp: 'WA', zalo: 'Z', telegram: 'T' };
  return (
    <span class={`channel-icon ch-${channel}`} title={channel}>
      {letter[channel] ?? '?'}
    </span>
  );
};

/** The customer's picture from the channel (decorative beside their name), or nothing. */
export const Avatar = ({ url, size = 32, testid }: { url?: string | null; size?: number; testid?: string }) =>
  url ? <img class="avatar" src={url} width={size} height={size} alt="" loading="lazy" referrerpolicy="no-referrer" data-testid={testid} /> : null;
