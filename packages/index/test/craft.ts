import { rawTar } from '@gcfs/testkit';

// The raw tar builder lives in @gcfs/testkit: the downloader's hostile corpus uses it too.
export const { data, END, header, member, pax, tar } = rawTar;
