// Which files a page may show inline. The server derives every file's type from its bytes and
// serves only these as themselves; the app and the widget ask the same question of the same list,
// so a type string that merely starts with "image/" (image/svg+xml, "image/png,text/html") is
// never put in an <img>, a <video> or a blob: URL of that type.
const IMAGES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];
const VIDEOS = ['video/mp4', 'video/webm'];

export const isImage = (type: string): boolean => IMAGES.includes(type);
export const isVideo = (type: string): boolean => VIDEOS.includes(type);
/** The type a blob: URL of this file may carry: its own if it is a picture, else plain bytes. */
export const blobType = (type: string): string => (isImage(type) ? type : 'application/octet-stream');
