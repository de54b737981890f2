/**
 * An OCI image layout (oci-layout, index.json, blobs/sha256: one manifest,
 * one config, one uncompressed layer) that `ctr images import` and
 * `docker load`-compatible tools accept. Shared by `npm run image`
 * (scripts/image.mjs) and the test containerd's images
 * (__test__/helpers/containerd.ts); packing the layout into a tarball is the
 * caller's (the image is packed reproducibly, the test images need not be).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/**
 * Writes the layout into directory `layout` (created if missing): the layer
 * tar at `layerTar` becomes a blob (and is removed), `config` gets the
 * layer's diff_id as its `rootfs`, the index names the image `name`
 * (`org.opencontainers.image.ref.name` and `io.containerd.image.name`).
 * `annotations` are the manifest's. Returns the blobs' descriptors.
 */
export function writeOciLayout(layout, { layerTar, config, name, annotations }) {
  const blobs = join(layout, 'blobs/sha256');
  mkdirSync(blobs, { recursive: true });
  const blob = (b) => {
    const d = createHash('sha256').update(b).digest('hex');
    writeFileSync(join(blobs, d), b);
    return { digest: `sha256:${d}`, size: b.length };
  };
  const layer = blob(readFileSync(layerTar));
  rmSync(layerTar);
  const configBlob = blob(Buffer.from(JSON.stringify({ ...config, rootfs: { type: 'layers', diff_ids: [layer.digest] } })));
  const manifest = blob(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configBlob },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        ...(annotations ? { annotations } : {}),
      }),
    ),
  );
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: MANIFEST,
          ...manifest,
          platform: { architecture: config.architecture, os: config.os },
          annotations: { 'org.opencontainers.image.ref.name': name, 'io.containerd.image.name': name },
        },
      ],
    }),
  );
  return { layer, config: configBlob, manifest };
}
