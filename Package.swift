// swift-tools-version:6.1
import PackageDescription

// Dependencies point one way: C modules <- messages <- RPC core <- API stubs;
// domain <- storage; everything <- the executables. docs/ARCHITECTURE.md has the map.
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "billingd",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "billingd", targets: ["billingd"]),
        .executable(name: "billing", targets: ["billing"]),
        .executable(name: "billing-panel", targets: ["billing-panel"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        // HTTP for the webhook endpoint and the sandbox's page (no swift-configuration, no full Foundation).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        // Child processes for tests and tools: Foundation's Process.run can crash on Linux
        // (swift-corelibs-foundation#5472, an over-read listing /proc/self/fd).
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        // Metrics: the swift-metrics API, exported by swift-prometheus at GET /metrics.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // PostgreSQL, for several billingd instances on one database (storage.postgres).
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // Only for TLS to PostgreSQL: postgres-nio takes swift-nio-ssl's context (billingd's own TLS is OpenSSL).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // C: system libraries found with pkg-config, and protoc-c's output.
        .systemLibrary(
            name: "CProtobufC",
            pkgConfig: "libprotobuf-c",
            providers: [.apt(["libprotobuf-c-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "COpenSSLShims", dependencies: ["COpenSSL"]),
        .systemLibrary(
            name: "CPangoCairo",
            pkgConfig: "pangocairo",
            providers: [.apt(["libpango1.0-dev", "libcairo2-dev"])]
        ),
        .target(name: "CBillingProto", dependencies: ["CProtobufC"]),

        // Swift value types over protobuf-c (runtime + generated).
        .target(
            name: "BillingMessages",
            dependencies: ["CBillingProto", "CProtobufC"],
            swiftSettings: strict
        ),
        // Status codes, metadata, method descriptors, call abstractions: no
        // transport, no message format, no billing roles.
        .target(
            name: "BillingRPC",
            swiftSettings: strict
        ),
        // Generated service protocols and typed clients, protobuf coding for the
        // RPC core, and billing's roles (Principal).
        .target(
            name: "BillingAPI",
            dependencies: ["BillingMessages", "BillingRPC"],
            swiftSettings: strict
        ),

        // ttrpc framing: frame header, decoder, encoder, limits.
        .target(
            name: "BillingWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // TLS over the system OpenSSL, as a NIO channel handler with memory BIOs.
        .target(
            name: "BillingTLS",
            dependencies: ["COpenSSL", "COpenSSLShims", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The ttrpc server and client over TLS: streams, limits, deadlines,
        // shutdown; and the standard health service.
        .target(
            name: "BillingTransport",
            dependencies: [
                "BillingWire", "BillingTLS", "BillingRPC", "BillingMessages", "BillingAPI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // The domain: money, payments, rules. Pure Swift: no NIO, no C, no storage.
        .target(
            name: "BillingCore",
            swiftSettings: strict
        ),
        // Persistence of the domain in one SQLite file (WAL), through GRDB.
        .target(
            name: "BillingStorage",
            dependencies: ["BillingCore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        // The same persistence on PostgreSQL (postgres-nio), for several
        // instances on one database; and the copy of a SQLite file into it.
        .target(
            name: "BillingPostgres",
            dependencies: [
                "BillingCore", "BillingStorage",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Documents for people: invoices as printable HTML and as PDF (cairo, text by Pango).
        .target(
            name: "BillingDocuments",
            dependencies: ["BillingCore", "CPangoCairo"],
            swiftSettings: strict
        ),
        // Payment systems behind one interface; one folder each. The sandbox
        // keeps its state in an SQLite file of its own (GRDB) and routes its
        // page with Hummingbird.
        .target(
            name: "BillingProviders",
            dependencies: [
                "BillingCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        // The billing services over the core: authorization, error mapping,
        // payment flows, the poller, event streams, configuration, startup.
        .target(
            name: "BillingServer",
            dependencies: [
                "BillingAPI", "BillingCore", "BillingStorage", "BillingPostgres", "BillingProviders", "BillingTransport",
                "BillingTLS",
                "BillingRPC", "BillingMessages", "BillingDocuments",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),

        .executableTarget(
            name: "billingd",
            dependencies: [
                "BillingServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "billing",
            dependencies: [
                "BillingAPI", "BillingCore", "BillingMessages", "BillingRPC", "BillingTLS", "BillingTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ],
            swiftSettings: strict
        ),

        // The reference control-panel pages on billingd's API (Hummingbird),
        // a client of billingd like any internal service.
        .target(
            name: "BillingPanel",
            dependencies: [
                "BillingAPI", "BillingCore", "BillingMessages", "BillingRPC", "BillingTLS", "BillingTransport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "billing-panel",
            dependencies: [
                "BillingPanel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),

        // Benchmarks, the durability test's writer and the whole-process crash
        // test; figures in docs/BENCHMARKS.md and docs/RELIABILITY.md.
        .executableTarget(
            name: "billing-bench",
            dependencies: [
                "BillingStorage", "BillingPostgres", "BillingCore", "BillingTransport", "BillingTLS", "BillingAPI",
                "BillingRPC", "BillingMessages", "BillingWire",
                "BillingServer", "BillingTestSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),

        // Fuzz targets for every input from outside (deploy/fuzz builds them for libFuzzer).
        .executableTarget(
            name: "billing-fuzz",
            dependencies: [
                "BillingAPI", "BillingCore", "BillingMessages", "BillingRPC", "BillingServer", "BillingWire",
                "BillingPanel", "BillingDocuments", .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),

        // What several test targets share: the fake payment systems.
        .target(
            name: "BillingTestSupport",
            dependencies: [
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/BillingTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingMessagesTests",
            dependencies: ["BillingMessages", "BillingTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingCoreTests",
            dependencies: ["BillingCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingStorageTests",
            // billing-bench is the durability test's child process.
            dependencies: [
                "BillingStorage", "BillingPostgres", "BillingCore", "BillingTestSupport", "billing-bench",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingWireTests",
            dependencies: ["BillingWire", "BillingTestSupport", .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingTLSTests",
            dependencies: [
                "BillingTLS", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingTransportTests",
            dependencies: [
                "BillingTransport", "BillingTestSupport", "BillingAPI", "BillingTLS", "BillingWire", "BillingRPC",
                "BillingMessages",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingProvidersTests",
            dependencies: ["BillingProviders", "BillingCore", "BillingTestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingServerTests",
            // The CLI tests run the real billing and billingd executables; the
            // crash test runs billing-bench crash.
            dependencies: [
                "BillingServer", "billing", "billingd", "billing-bench", "billing-panel", "BillingPanel", "BillingDocuments",
                "BillingTestSupport", "BillingAPI", "BillingStorage", "BillingPostgres",
                "BillingCore", "BillingProviders", "BillingRPC", "BillingMessages",
                "BillingTLS", "BillingTransport", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "BillingRPCTests",
            dependencies: ["BillingAPI", "BillingRPC", "BillingMessages"],
            swiftSettings: strict
        ),
    ]
)
