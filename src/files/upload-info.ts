import type { JsonObject } from "../protocol/parse";
import type { UploadStatus } from "../protocol/upload";

/** The upload metadata document (`.fleet-fileds-fromhost-meta-<src>` in fleet-server) as admins read it. */
export interface UploadInfo {
  upload_id: string;
  agent_id: string;
  action_id: string;
  src: string;
  name: string;
  mime_type: string;
  size: number;
  chunk_size: number;
  chunk_count: number;
  chunks_received: number;
  status: UploadStatus;
  upload_start: string;
  expired: boolean;
  updated_at: string;
  transithash?: string;
  /** The begin payload with the fields fleet-server adds (ChunkSize, Status, upload_id, …). */
  doc: JsonObject;
}
