// Error strings travel into logs, gRPC answers and metrics: one built from a hostile input
// (a 5,000-deep path in ENAMETOOLONG, a megabyte-long image name) must not be as long as
// the input. Texts are cut at the source, visibly, with the length they had.

/** Longest error text kept whole (a message, a chain of causes, a downloader answer). */
export const MAX_ERROR_TEXT = 1024;

/** `text` when it is at most `max` characters, else its start, an ellipsis and its length. */
export function boundText(text: string, max = MAX_ERROR_TEXT): string {
  if (text.length <= max) return text;
  // Never split a surrogate pair: the cut text must still be valid UTF-16.
  const last = text.charCodeAt(max - 1);
  const end = last >= 0xd800 && last <= 0xdbff ? max - 1 : max;
  return `${text.slice(0, end)}… (${text.length} characters)`;
}
