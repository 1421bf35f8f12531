/// Finds the registered method for a ttrpc Request's service and method.
/// Built once at start, then read-only: safe to share across event loops.
public struct MethodRouter: Sendable {
    private var methods: [String: [String: RegisteredMethod]] = [:]

    public init(services: [any RPCService]) {
        for service in services {
            for method in service.registeredMethods {
                let key = method.descriptor
                precondition(methods[key.service]?[key.method] == nil, "\(key) registered twice")
                methods[key.service, default: [:]][key.method] = method
            }
        }
    }

    /// - Throws: `RPCError` UNIMPLEMENTED naming what is unknown.
    public func route(service: String, method: String) throws -> RegisteredMethod {
        guard let byMethod = methods[service] else {
            throw RPCError(.unimplemented, "unknown service \(Self.printable(service))")
        }
        guard let registered = byMethod[method] else {
            throw RPCError(.unimplemented, "unknown method \(Self.printable(method)) of \(service)")
        }
        return registered
    }

    public var descriptors: [MethodDescriptor] {
        methods.values.flatMap { $0.values.map(\.descriptor) }
    }

    /// Names from the wire are echoed back cut short, so an error stays small.
    private static func printable(_ name: String) -> String {
        name.utf8.count <= 128 ? "\"\(name)\"" : "\"\(name.prefix(128))…\""
    }
}
