/** Types of scripts/oci-layout.mjs (for __test__/helpers/containerd.ts). */
export interface Descriptor {
  digest: string;
  size: number;
}

export interface ImageConfig {
  architecture: string;
  os: string;
  [key: string]: unknown;
}

export function writeOciLayout(
  layout: string,
  opts: { layerTar: string; config: ImageConfig; name: string; annotations?: Record<string, string> },
): { layer: Descriptor; config: Descriptor; manifest: Descriptor };
