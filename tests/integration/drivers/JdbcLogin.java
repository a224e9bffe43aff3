// A pgJDBC client for tests/integration/auth.sh: logs in with the driver's
// default settings plus what every verify-full user sets (host, port,
// database, user, password, sslmode=verify-full, sslrootcert), runs one query
// and prints "ok <first column>" or "error sqlstate=<S> message=<text>".
//
//   java -cp <jar>:<dir of this class> JdbcLogin HOST PORT DB USER ROOTCERT SQL [URLPARAMS]
//
// The password comes from the environment variable PGPASSWORD, never argv.
// URLPARAMS (e.g. "channelBinding=disable") is appended to the URL as is.
// Exit status: 0 ok, 1 the login or query failed, 2 usage.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Properties;

public final class JdbcLogin {
    private JdbcLogin() {}

    private static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("[\\r\\n\\t]+", " ");
    }

    public static void main(String[] args) {
        if (args.length < 6 || args.length > 7) {
            System.err.println("usage: JdbcLogin HOST PORT DB USER ROOTCERT SQL [URLPARAMS]");
            System.exit(2);
        }
        String url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[2]
                + "?sslmode=verify-full&sslrootcert=" + args[4]
                + (args.length == 7 ? "&" + args[6] : "");
        Properties props = new Properties();
        props.setProperty("user", args[3]);
        String password = System.getenv("PGPASSWORD");
        if (password != null) {
            props.setProperty("password", password);
        }
        try (Connection c = DriverManager.getConnection(url, props);
                Statement st = c.createStatement();
                ResultSet rs = st.executeQuery(args[5])) {
            System.out.println(rs.next() ? "ok " + rs.getString(1) : "ok (no rows)");
        } catch (SQLException e) {
            System.out.println("error sqlstate=" + (e.getSQLState() == null ? "-" : e.getSQLState())
                    + " message=" + oneLine(e.getMessage()));
            System.exit(1);
        }
    }
}
