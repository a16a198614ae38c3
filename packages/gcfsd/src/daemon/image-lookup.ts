// Which image in use an operator means (the admin API's ListLayers and UnregisterImage, so
// gcfsctl's IMAGE argument). Images are registered by digest, `registry/repository@sha256:…`,
// but people type what they pulled, `repository:tag`: the tag is gone by the time an image is
// registered, so a reference without a digest names the image of its repository when only one
// is in use.

import { checkLength, ErrorCode, GcfsError, Limits, quote } from '@gcfs/core';
import { type ImageReference, parseReference } from '@gcfs/registry';

interface Named {
  name: string;
  manifestDigest: string;
}

function parse(text: string): ImageReference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

function sameRepository(a: ImageReference, b: ImageReference | undefined): boolean {
  return b !== undefined && a.registry === b.registry && a.repository === b.repository;
}

/** The image in use `text` names; ERR_NOT_FOUND, or ERR_INVALID_ARGUMENT when it names several. */
export function findImage<T extends Named>(images: readonly T[], text: string): T {
  checkLength('image', text, Limits.reference);
  const wanted = parse(text);
  const matches = (() => {
    const exact = images.filter((image) => image.name === text || image.name === wanted?.toString());
    if (exact.length > 0 || wanted === undefined) return exact;
    const ofRepository = images.filter((image) => sameRepository(wanted, parse(image.name)));
    if (wanted.digest === undefined) return ofRepository;
    return ofRepository.filter((image) => image.manifestDigest === wanted.digest);
  })();
  if (matches.length === 1) return matches[0]!;
  if (matches.length === 0) {
    throw new GcfsError(ErrorCode.NotFound, `image ${quote(text)} is not in use on this node`, {
      hint: '`gcfsctl images` lists the images in use',
    });
  }
  throw new GcfsError(
    ErrorCode.InvalidArgument,
    `${quote(text)} names ${matches.length} images in use: ${matches.map((image) => image.name).join(', ')}`,
    { hint: 'give the full name with its digest' },
  );
}
