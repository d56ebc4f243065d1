export declare const EM: { readonly X86_64: 62; readonly AARCH64: 183 };
export declare const EM_OF_ARCH: Readonly<Record<'x64' | 'arm64', number>>;
export declare function elfMachine(file: string): { bits: 32 | 64; machine: number } | null;
