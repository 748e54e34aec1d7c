/**
 * Hands the frames the boot already received (boot.ts) to Cornerstone's
 * WADO-RS loader, so that it decodes them without requesting them again.
 *
 * The DICOM image loader asks the metadata providers for a frame's
 * `compressedFrameData` (its bytes and transfer syntax) before it goes to the
 * network (dicom-image-loader, wadors/loadImageFromRegistry); a provider that
 * answers for the boot's frames saves each of them a second request (served
 * from the HTTP cache, but still a request, a response copied to the main
 * thread and a multipart split each, while the workspace starts up).
 *
 * No Cornerstone import here (the provider is registered by viewer/init.ts),
 * so the answer can be unit-tested.
 */
import { frameUrlOf } from '../api/dicomweb';
import type { FramePart } from './preview';

/** MetadataModules.COMPRESSED_FRAME_DATA of @cornerstonejs/metadata. */
export const COMPRESSED_FRAME_DATA = 'compressedFrameData';

/** Above Cornerstone's own providers (priority 0 and below): answered only for the boot's frames. */
export const BOOT_FRAMES_PRIORITY = 1000;

export interface CompressedFrameData {
  pixelData: Uint8Array;
  transferSyntaxUid: string;
}

/**
 * The provider's answer for one metadata query: the boot's frame for a
 * `wadors:` image id, taken from `take`; undefined for every other query, and
 * for a frame whose response named no transfer syntax (the loader then
 * requests it, as without the boot).
 */
export function bootFrameData(type: string, imageId: unknown, take: (url: string) => FramePart | undefined): CompressedFrameData | undefined {
  const url = type === COMPRESSED_FRAME_DATA && typeof imageId === 'string' ? frameUrlOf(imageId) : null;
  if (url === null) return undefined;
  const frame = take(url);
  if (!frame?.transferSyntax || frame.body.length === 0) return undefined;
  // Its own buffer, as the loader's multipart split gives it: the decoders view the buffer from the
  // array's byteOffset, and the part sits at any offset of the response.
  return { pixelData: frame.body.slice(), transferSyntaxUid: frame.transferSyntax };
}
