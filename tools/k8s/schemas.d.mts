/** Types of schemas.mjs (strict kubeconform schemas from the k8s.io/kubernetes OpenAPI document). */
export declare const K8S_VERSION: string;
/** The module cache's swagger.json of k8s.io/kubernetes@K8S_VERSION; `go mod download`s it when allowed. */
export declare function swaggerPath(opts?: { download?: boolean }): string;
/** Writes one schema per kind into outDir; returns how many. */
export declare function generate(outDir: string, swagger?: string): number;
