/** The record type of an OpenTelemetry collector managed over OpAMP, as fleet-server writes it in `.fleet-agents`. */
export const OPAMP_AGENT_TYPE = "OPAMP";
