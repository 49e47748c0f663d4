// Metadata-only watches. The operator's watch events only say "something in namespace N changed"
// (reads decide), so it asks the API server for PartialObjectMetadata: no spec, no status and,
// above all, no Secret data ever reaches the operator through a watch. client-node's Watch cannot
// set the Accept header this needs, so this is the small streaming GET on node:https.

import https from "node:https";
import type { KubeConfig } from "@kubernetes/client-node";
import { followWatch } from "../../sidecar/process/watch-lines.ts";

/** Accept header for metadata-only list/watch responses (as metadata informers use). */
export const METADATA_ACCEPT =
  "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

/** The server ends each watch after this long (the caller restarts it). */
const SERVER_TIMEOUT_SECONDS = 240;
/** A watch silent for this long is presumed dead (the server timeout would have ended it). */
const IDLE_MS = (SERVER_TIMEOUT_SECONDS + 60) * 1000;

/** What a metadata-only watch event carries: kind `PartialObjectMetadata` and metadata, no more. */
export interface MetadataObject {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
}

/**
 * Watches `path` (a collection, e.g. `/api/v1/secrets`) as metadata only, calling `onEvent` with
 * each event's object, and `done` once when the watch ends for any reason: an error, the
 * server's timeout (no error), or `abort()` (no error). Starts from "now": the server first
 * sends an ADDED per object.
 */
export async function watchMetadata(
  config: KubeConfig,
  path: string,
  onEvent: (type: string, object: MetadataObject) => void,
  done: (err?: Error) => void,
): Promise<{ abort(): void }> {
  const cluster = config.getCurrentCluster();
  if (cluster === null) throw new Error("the kubeconfig has no current cluster");
  const url = new URL(cluster.server + path);
  url.searchParams.set("watch", "true");
  url.searchParams.set("timeoutSeconds", String(SERVER_TIMEOUT_SECONDS));
  const options: https.RequestOptions = {
    method: "GET",
    headers: { accept: METADATA_ACCEPT },
  };
  await config.applyToHTTPSOptions(options);
  let finished = false;
  const finish = (err?: Error): void => {
    if (finished) return;
    finished = true;
    done(err);
  };
  const req = https.request(url, { ...options, agent: false }, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      finish(new Error(`watch ${path}: HTTP ${String(res.statusCode)}`));
      req.destroy();
      return;
    }
    followWatch(
      res,
      path,
      (type, object) => {
        onEvent(type, object ?? {});
      },
      (err) => {
        finish(err ?? undefined);
        if (err) req.destroy();
      },
      () => finished,
    );
  });
  req.setTimeout(IDLE_MS, () => req.destroy(new Error(`watch ${path}: silent for ${String(IDLE_MS)} ms`)));
  req.on("error", (err) => {
    finish(err);
  });
  req.on("close", () => {
    finish();
  });
  req.end();
  return {
    abort: () => {
      finish(); // stopped on purpose: done() without an error
      req.destroy();
    },
  };
}
