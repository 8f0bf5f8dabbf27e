// JvmHold: a JVM whose heap grows past a budget and then holds nothing (tests/host/jvm.sh). It
// waits WAIT seconds (the driver finds it, its attach listener may start), allocates MIB MiB in
// 256 KiB arrays touching every page, drops them all at once (garbage nothing collects while it idles:
// an idle JVM allocates nothing, so no GC runs and the heap stays committed), idles HOLD seconds,
// and prints its resident set before exiting 0: "jvmhold: grown MIB MiB, rss_after_hold BYTES".
// Usage: java JvmHold MIB HOLD [WAIT]
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.List;

public class JvmHold {
    static long rss() throws Exception {
        for (String l : Files.readAllLines(Paths.get("/proc/self/status")))
            if (l.startsWith("VmRSS:"))
                return Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024;
        return -1;
    }

    public static void main(String[] args) throws Exception {
        int mib = Integer.parseInt(args[0]);
        int hold = Integer.parseInt(args[1]);
        int wait = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        Thread.sleep(wait * 1000L);
        List<byte[]> live = new ArrayList<>();
        for (int i = 0; i < mib * 4; i++) {
            byte[] b = new byte[1 << 18]; // 256 KiB: not humongous in G1's 1 MiB regions
            for (int k = 0; k < b.length; k += 4096)
                b[k] = 1;
            live.add(b);
        }
        System.out.println("jvmhold: grown " + mib + " MiB, rss " + rss());
        live = null;
        long end = System.currentTimeMillis() + hold * 1000L;
        while (System.currentTimeMillis() < end)
            Thread.sleep(100);
        System.out.println("jvmhold: grown " + mib + " MiB, rss_after_hold " + rss());
    }
}
